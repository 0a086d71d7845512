"""The tracker sync: every committed change reaches PostFlow's tracker, whatever fails on the way."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from postflow_webhooks.adapters.memory import MemoryDatabase, MemoryTracker
from postflow_webhooks.app.policies import Policies
from postflow_webhooks.domain.journal import BatchResult
from postflow_webhooks.domain.records import UploadRecord
from postflow_webhooks.domain.statuses import Processing
from postflow_webhooks.service.tracker_sync import TrackerSync

pytestmark = pytest.mark.anyio

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def record(file_id: str, processing: Processing = Processing.PROCESSING) -> UploadRecord:
    """A tracked file in some processing state."""
    return UploadRecord(file_id=file_id, name=f"{file_id}.mov", processing=processing)


async def test_catch_up_writes_every_change_once_and_moves_the_mark() -> None:
    """Changes of two passes reach the tracker, a file changed twice once in its latest state."""
    db, tracker = MemoryDatabase(), MemoryTracker()
    sync = TrackerSync(db, tracker, backoff=Policies().tracker_failure, batch_size=2)
    await db.commit(BatchResult(at=T0, records=(record("a"), record("b"), record("c"))))
    await db.commit(BatchResult(at=T0, records=(record("a", Processing.READY),)))
    assert await sync.catch_up() == 3
    assert tracker.records["a"].processing is Processing.READY
    assert set(tracker.records) == {"a", "b", "c"}
    assert await sync.catch_up() == 0


async def test_a_failed_write_keeps_the_mark_so_nothing_is_lost() -> None:
    """The tracker refuses a write: the change is written again on the next try."""
    db, tracker = MemoryDatabase(), MemoryTracker()
    sync = TrackerSync(db, tracker, backoff=Policies().tracker_failure)
    await db.commit(BatchResult(at=T0, records=(record("a"),)))
    tracker.fail_next = 1
    with pytest.raises(OSError):
        await sync.catch_up()
    assert await db.tracker_mark() == 0
    assert await sync.catch_up() == 1
    assert set(tracker.records) == {"a"}


async def test_adopt_takes_the_trackers_files_the_database_lacks() -> None:
    """At start, files only the tracker knows are taken in; the database's own stay as they are."""
    db, tracker = MemoryDatabase(), MemoryTracker()
    await db.commit(BatchResult(at=T0, records=(record("ours", Processing.READY),)))
    tracker.records = {"ours": record("ours"), "theirs": record("theirs")}
    sync = TrackerSync(db, tracker, backoff=Policies().tracker_failure)
    assert await sync.adopt() == 1
    assert (await db.find("ours")) == record("ours", Processing.READY)
    assert (await db.find("theirs")) == record("theirs")


async def test_ten_thousand_failed_writes_in_a_row_wait_finite_capped_times() -> None:
    """A tracker that never recovers: the loop waits the policy's capped backoff, never overflows."""
    db, tracker = MemoryDatabase(), MemoryTracker()
    await db.commit(BatchResult(at=T0, records=(record("a"),)))
    tracker.fail_next = 10**9
    waits: list[float] = []
    sync: TrackerSync

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 10_000:
            await sync.stop()
        await asyncio.sleep(0)

    sync = TrackerSync(db, tracker, backoff=Policies().tracker_failure, sleep=sleep)
    await asyncio.wait_for(sync.run(), timeout=60)
    assert len(waits) == 10_000
    assert all(0 < wait <= 60 for wait in waits)
    assert waits[:3] == [1, 2, 4]
    assert set(waits[-100:]) == {60}
    assert sync.last_error is not None and "unavailable" in sync.last_error
    assert await db.tracker_mark() == 0
