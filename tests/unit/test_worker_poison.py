"""The worker never halts: whatever one delivery holds, it alone is quarantined and others go on."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from postflow_webhooks.adapters.memory import FixedClock, MemoryDatabase
from postflow_webhooks.adapters.payload import read_body
from postflow_webhooks.app.policies import Policies
from postflow_webhooks.domain.errors import StorageUnavailableError
from postflow_webhooks.domain.journal import BatchResult, IncomingDelivery
from postflow_webhooks.domain.mapping import ReviewMapping
from postflow_webhooks.domain.statuses import PostflowStatus, Review
from postflow_webhooks.service.worker import DeliveryWorker, describe

T0 = datetime(2026, 3, 1, tzinfo=UTC)
POLICIES = Policies()


class PickyDatabase(MemoryDatabase):
    """A memory database whose store refuses records named ``poison*``, or everything when down."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False
        self.refused = 0

    async def commit(self, result: BatchResult) -> None:
        """Refuse the whole pass (nothing written) as a store would."""
        if self.down:
            raise StorageUnavailableError("database: disk full")
        if any((r.name or "").startswith("poison") for r in result.records):
            self.refused += 1
            raise UnicodeEncodeError("utf-8", "\ud83d", 0, 1, "surrogates not allowed")
        await super().commit(result)


async def deliver(db: MemoryDatabase, file_id: str, name: str, event: str = "file.ready") -> None:
    """Commit one PostFlow-dialect delivery."""
    body = json.dumps({"event_type": event, "resource": {"id": file_id, "name": name}}).encode()
    await db.append(IncomingDelivery(uuid.uuid4().hex, T0, body, event, file_id))


def build(db: MemoryDatabase, **options: Any) -> DeliveryWorker:
    """A worker over ``db``."""
    return DeliveryWorker(
        db,
        db,
        read_body,
        FixedClock(T0),
        failure_backoff=POLICIES.worker_failure,
        enrich_backoff=POLICIES.enrichment,
        **options,
    )


@pytest.mark.anyio
async def test_a_record_the_store_refuses_quarantines_only_its_delivery() -> None:
    """A pass that cannot be committed is committed one delivery at a time; only one is set aside."""
    db = PickyDatabase()
    await deliver(db, "a", "a.mov")
    await deliver(db, "p", "poison.mov")
    await deliver(db, "b", "b.mov")
    worker = build(db)
    assert await worker.run_once() is True
    assert db.refused >= 2  # the whole pass, then the poisoned delivery alone
    assert {fid: r.status for fid, r in db.records.items()} == {
        "a": PostflowStatus.COMPLETED,
        "b": PostflowStatus.COMPLETED,
    }
    (quarantined,) = await db.quarantined()
    assert quarantined.reason.startswith("its changes could not be stored: UnicodeEncodeError")
    assert (await db.stats()).backlog == 0
    assert worker.processed_total == 2
    assert await worker.run_once() is False


@pytest.mark.anyio
async def test_later_deliveries_of_a_quarantined_file_wait_for_the_next_pass() -> None:
    """After a quarantined delivery, its file's later ones stay pending for the next pass."""
    db = PickyDatabase()
    await deliver(db, "p", "poison.mov", "file.created")
    await deliver(db, "p", "poison.mov", "file.ready")
    await deliver(db, "a", "a.mov")
    worker = build(db)
    await worker.run_once()
    assert set(db.records) == {"a"}
    assert len(await db.quarantined()) == 1
    (waiting,) = await db.pending(10, T0)
    assert (waiting.file_id, waiting.event_type) == ("p", "file.ready")
    assert await worker.run_once() is True
    assert len(await db.quarantined()) == 2 and (await db.stats()).backlog == 0


@pytest.mark.anyio
async def test_a_storage_outage_fails_the_pass_and_quarantines_nothing() -> None:
    """Disk full is not one delivery's fault: the pass fails, everything stays pending."""
    db = PickyDatabase()
    await deliver(db, "a", "a.mov")
    db.down = True
    worker = build(db)
    with pytest.raises(StorageUnavailableError):
        await worker.run_once()
    assert await db.quarantined() == []
    db.down = False
    assert await worker.run_once() is True
    assert db.records["a"].status is PostflowStatus.COMPLETED


@pytest.mark.anyio
async def test_a_reader_that_raises_anything_quarantines_and_goes_on() -> None:
    """Any exception from the reader (not only a payload error) quarantines that delivery."""
    db = MemoryDatabase()
    await deliver(db, "a", "a.mov")
    await deliver(db, "boom", "boom.mov")

    def reader(body: bytes) -> Any:
        if b"boom" in body:
            raise MemoryError("exploded")
        return read_body(body)

    worker = DeliveryWorker(
        db,
        db,
        reader,
        FixedClock(T0),
        failure_backoff=POLICIES.worker_failure,
        enrich_backoff=POLICIES.enrichment,
    )
    assert await worker.run_once() is True
    (quarantined,) = await db.quarantined()
    assert quarantined.reason == "unreadable delivery: MemoryError: exploded"
    assert db.records["a"].status is PostflowStatus.COMPLETED


def test_a_reason_can_always_be_stored() -> None:
    """Lone surrogates in an error's message are escaped, and reasons are bounded."""
    reason = describe(ValueError("bad \ud83d" + "x" * 5000))
    reason.encode("utf-8")
    assert reason.startswith("ValueError: bad \\ud83d") and len(reason) == 1000


class ExplodingMapping(ReviewMapping):
    """The default review mapping, except that the rules' lookup of ``"Explode"`` raises.

    Stands for a bug in the rules that one delivery's words trip over.
    """

    def meaning(self, text: str | None) -> Review | None:
        """What the default mapping says, but ``"Explode"`` raises."""
        if text == "Explode":
            raise RuntimeError("the rules tripped over Explode")
        return super().meaning(text)


async def set_status(db: MemoryDatabase, file_id: str, status: str) -> None:
    """Commit one PostFlow-dialect ``file.status.changed`` delivery for ``file_id``."""
    body = json.dumps(
        {
            "event_type": "file.status.changed",
            "resource": {"id": file_id, "name": f"{file_id}.mov", "status": status},
        }
    ).encode()
    await db.append(IncomingDelivery(uuid.uuid4().hex, T0, body, "file.status.changed", file_id))


@pytest.mark.anyio
async def test_rules_that_raise_for_one_delivery_quarantine_only_it_and_the_worker_goes_on() -> (
    None
):
    """The rules fail on one delivery: it alone is quarantined with the reason; others apply."""
    db = MemoryDatabase()
    await deliver(db, "a", "a.mov")
    await set_status(db, "p", "Explode")
    await deliver(db, "b", "b.mov")
    worker = build(db, review=ExplodingMapping())
    assert await worker.run_once() is True
    (quarantined,) = await db.quarantined()
    assert quarantined.event_type == "file.status.changed"
    assert quarantined.reason == "the rules failed: RuntimeError: the rules tripped over Explode"
    assert {fid: r.status for fid, r in db.records.items()} == {
        "a": PostflowStatus.COMPLETED,
        "b": PostflowStatus.COMPLETED,
    }
    assert worker.processed_total == 2 and (await db.stats()).backlog == 0
    # The worker goes on: later deliveries, the quarantined file's included, are applied.
    await set_status(db, "p", "Approved")
    await deliver(db, "c", "c.mov")
    assert await worker.run_once() is True
    assert db.records["p"].status is PostflowStatus.APPROVED
    assert db.records["c"].status is PostflowStatus.COMPLETED
    assert len(await db.quarantined()) == 1 and worker.processed_total == 4
