"""One contract for the delivery journal and outbox: the memory fake and SQLite."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from postflow_webhooks.adapters.memory import MemoryJournal
from postflow_webhooks.adapters.sqlite import SqliteJournal
from postflow_webhooks.domain.journal import (
    BatchResult,
    Deferral,
    DestinationState,
    IncomingDelivery,
    LastEvent,
    Quarantine,
)
from postflow_webhooks.domain.records import Notification, NotificationKind, UploadRecord
from postflow_webhooks.domain.statuses import PostflowStatus

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def delivery(file_id: str | None, event_type: str = "file.ready") -> IncomingDelivery:
    """A delivery about ``file_id``."""
    return IncomingDelivery(
        delivery_id=uuid.uuid4().hex,
        received_at=T0,
        body=b'{"type": "%s"}' % event_type.encode(),
        event_type=event_type,
        file_id=file_id,
    )


def note(file_id: str, status: PostflowStatus) -> Notification:
    """A status notification for ``file_id``."""
    return Notification(
        kind=NotificationKind.STATUS,
        file_id=file_id,
        at=T0,
        event_type="file.ready",
        delivery_id="d",
        version=1,
        new_status=status,
    )


class JournalContract:
    """What every journal must do."""

    def make(self, tmp_path: Path) -> Any:
        """A fresh, opened journal."""
        raise NotImplementedError

    @pytest.fixture
    async def journal(self, tmp_path: Path) -> AsyncIterator[Any]:
        """A journal, closed after the test."""
        made = self.make(tmp_path)
        yield made
        if hasattr(made, "close"):
            await made.close()

    @pytest.mark.anyio
    async def test_appended_deliveries_are_pending_in_order(self, journal: Any) -> None:
        """Deliveries come back in the order they were appended, with their bytes."""
        sent = [delivery(f"f{i}") for i in range(5)]
        for item in sent:
            await journal.append(item)
        pending = await journal.pending(10, T0)
        assert [p.delivery_id for p in pending] == [d.delivery_id for d in sent]
        assert pending[0].body == sent[0].body
        assert [p.seq for p in pending] == sorted(p.seq for p in pending)

    @pytest.mark.anyio
    async def test_processed_deliveries_leave_the_queue_and_count(self, journal: Any) -> None:
        """A committed pass removes processed deliveries and keeps the counters."""
        for item in [delivery("a"), delivery("b", "file.created")]:
            await journal.append(item)
        pending = await journal.pending(10, T0)
        last = LastEvent("x", "file.created", "b", "status_changed", T0)
        await journal.commit(
            BatchResult(at=T0, processed=tuple(p.seq for p in pending), last_event=last)
        )
        assert await journal.pending(10, T0) == []
        stats = await journal.stats()
        assert stats.total_events == 2 and stats.backlog == 0
        assert stats.events_by_type == {"file.ready": 1, "file.created": 1}
        assert stats.last_event == last

    @pytest.mark.anyio
    async def test_a_deferred_delivery_holds_back_later_ones_of_its_file(
        self, journal: Any
    ) -> None:
        """While a delivery waits, later deliveries of the same file wait too; others go on."""
        for item in [delivery("a"), delivery("a"), delivery("b")]:
            await journal.append(item)
        first = (await journal.pending(10, T0))[0]
        later = T0 + timedelta(minutes=1)
        await journal.commit(BatchResult(at=T0, deferred=(Deferral(first.seq, later, "api"),)))
        now_due = await journal.pending(10, T0)
        assert [p.file_id for p in now_due] == ["b"]
        after = await journal.pending(10, later)
        assert [p.file_id for p in after] == ["a", "a", "b"]
        assert after[0].attempts == 1 and after[0].last_error == "api"

    @pytest.mark.anyio
    async def test_quarantine_sets_aside_and_requeue_brings_back(self, journal: Any) -> None:
        """A quarantined delivery is listed with its reason and can be replayed."""
        await journal.append(delivery("a"))
        seq = (await journal.pending(10, T0))[0].seq
        await journal.commit(BatchResult(at=T0, quarantined=(Quarantine(seq, "broken"),)))
        assert await journal.pending(10, T0) == []
        listed = await journal.quarantined()
        assert [(q.seq, q.reason) for q in listed] == [(seq, "broken")]
        assert (await journal.stats()).quarantined == 1
        assert await journal.requeue([seq]) == 1
        assert [p.seq for p in await journal.pending(10, T0)] == [seq]

    @pytest.mark.anyio
    async def test_rejections_are_counted_by_reason(self, journal: Any) -> None:
        """Refused requests are counted by reason."""
        await journal.reject("bad_signature")
        await journal.reject("bad_signature")
        await journal.reject("too_large")
        assert (await journal.stats()).rejections == {"bad_signature": 2, "too_large": 1}

    @pytest.mark.anyio
    async def test_tracker_writes_survive_until_cleared(self, journal: Any) -> None:
        """Committed records stay pending until the store confirms them."""
        one = UploadRecord.new("a", T0)
        await journal.commit(BatchResult(at=T0, records=(one,)))
        assert await journal.tracker_writes() == [one]
        await journal.clear_tracker_writes([one])
        assert await journal.tracker_writes() == []

    @pytest.mark.anyio
    async def test_notifications_come_out_in_commit_order_and_settle(self, journal: Any) -> None:
        """Due notifications are numbered in order; settled ones leave the queue."""
        await journal.commit(
            BatchResult(
                at=T0,
                notifications=(
                    note("a", PostflowStatus.PROCESSING),
                    note("a", PostflowStatus.COMPLETED),
                ),
            )
        )
        due = await journal.due(10)
        assert [n.new_status for n in due] == [PostflowStatus.PROCESSING, PostflowStatus.COMPLETED]
        assert due[0].id is not None and due[1].id is not None and due[0].id < due[1].id
        await journal.mark_sent(due[0].id, T0)
        await journal.mark_dead(due[1].id, "400 Invalid Form Body", T0)
        assert await journal.due(10) == []
        dead = await journal.dead_letters()
        assert [(d.notification.id, d.reason) for d in dead] == [
            (due[1].id, "400 Invalid Form Body")
        ]
        assert await journal.requeue_dead([due[1].id]) == 1
        assert [n.id for n in await journal.due(10)] == [due[1].id]

    @pytest.mark.anyio
    async def test_skipped_notifications_settle_together_and_leave_the_queue(
        self, journal: Any
    ) -> None:
        """Several skips in one call: those leave the queue, the others stay due, in order."""
        statuses = [PostflowStatus.PROCESSING, PostflowStatus.COMPLETED, PostflowStatus.APPROVED]
        await journal.commit(
            BatchResult(at=T0, notifications=tuple(note("s", s) for s in statuses))
        )
        first, second, third = await journal.due(10)
        await journal.mark_skipped([(first.id, "no notifier"), (third.id, "filtered out")], T0)
        assert [n.id for n in await journal.due(10)] == [second.id]
        await journal.mark_skipped([], T0)
        assert [n.id for n in await journal.due(10)] == [second.id]
        assert (await journal.stats()).notifications_pending == 1

    @pytest.mark.anyio
    async def test_destination_state_is_saved(self, journal: Any) -> None:
        """A destination is working until marked broken, and remembers why."""
        assert (await journal.destination("k")).broken is False
        await journal.set_destination(DestinationState("k", True, "404 Unknown Webhook", T0))
        saved = await journal.destination("k")
        assert saved.broken and saved.reason == "404 Unknown Webhook" and saved.since == T0

    @pytest.mark.anyio
    async def test_prune_drops_only_old_processed_work(self, journal: Any) -> None:
        """Pruning deletes processed deliveries and sent notifications older than the cutoff."""
        await journal.append(delivery("a"))
        await journal.append(delivery("b"))
        pending = await journal.pending(10, T0)
        await journal.commit(
            BatchResult(
                at=T0,
                processed=(pending[0].seq,),
                notifications=(note("a", PostflowStatus.COMPLETED),),
            )
        )
        sent = (await journal.due(1))[0]
        assert sent.id is not None
        await journal.mark_sent(sent.id, T0)
        assert await journal.prune(T0 - timedelta(days=1)) == 0
        assert await journal.prune(T0 + timedelta(days=1)) == 2
        assert [p.file_id for p in await journal.pending(10, T0)] == ["b"]


class TestMemoryJournal(JournalContract):
    """The in-memory fake keeps the journal contract."""

    def make(self, tmp_path: Path) -> Any:
        """A memory journal."""
        return MemoryJournal()


class TestSqliteJournal(JournalContract):
    """The SQLite journal keeps the contract."""

    def make(self, tmp_path: Path) -> Any:
        """An opened SQLite journal in a fresh file."""
        journal = SqliteJournal(tmp_path / "journal.sqlite3")
        journal.open()
        return journal


@pytest.mark.anyio
async def test_sqlite_journal_keeps_everything_across_reopen(tmp_path: Path) -> None:
    """Deliveries, counters and notifications survive closing and reopening the file."""
    path = tmp_path / "journal.sqlite3"
    first = SqliteJournal(path)
    first.open()
    await first.append(delivery("a"))
    await first.reject("bad_signature")
    await first.commit(BatchResult(at=T0, notifications=(note("a", PostflowStatus.COMPLETED),)))
    await first.close()
    second = SqliteJournal(path)
    second.open()
    stats = await second.stats()
    assert (stats.total_events, stats.backlog, stats.notifications_pending) == (1, 1, 1)
    assert stats.rejections == {"bad_signature": 1}
    await second.close()
