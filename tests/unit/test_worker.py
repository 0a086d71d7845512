"""The delivery worker with in-memory fakes: order, quarantine, deferral, repair."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from postflow_webhooks.adapters.memory import FixedClock, MemoryJournal, MemoryUploadStore
from postflow_webhooks.app.worker import (
    MAX_ENRICH_ATTEMPTS,
    DeliveryWorker,
    enrichment_backoff,
    failure_backoff,
)
from postflow_webhooks.domain.errors import DetailsUnavailableError, StorageError
from postflow_webhooks.domain.events import WebhookEvent
from postflow_webhooks.domain.journal import BatchResult, IncomingDelivery
from postflow_webhooks.domain.records import CommentInfo, Enrichment, FileInfo, UploadRecord
from postflow_webhooks.domain.statuses import PostflowStatus, Processing

pytestmark = pytest.mark.anyio
T0 = datetime(2026, 3, 1, tzinfo=UTC)


class FlakyDetails:
    """A file-details fake: answers from a dict, or fails while ``failing`` is set."""

    def __init__(self) -> None:
        self.files: dict[str, FileInfo] = {}
        self.failing: Exception | None = None
        self.calls = 0

    async def file(
        self, file_id: str, account_id: str | None = None, *, fresh: bool = False
    ) -> FileInfo | None:
        """The file, or the current failure."""
        self.calls += 1
        if self.failing is not None:
            raise self.failing
        return self.files.get(file_id)

    async def comment(self, comment_id: str, account_id: str | None = None) -> CommentInfo | None:
        """No comments here."""
        return None


async def append(journal: MemoryJournal, payload: Any, at: datetime = T0) -> None:
    """Commit one delivery of ``payload`` (a dict, or raw bytes)."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    event_type, file_id = "file.ready", None
    if isinstance(payload, dict):
        event = WebhookEvent.from_payload(payload)
        event_type, file_id = event.event_type, event.file_id
    await journal.append(IncomingDelivery(uuid.uuid4().hex, at, body, event_type, file_id))


def v4(kind: str, file_id: str) -> dict[str, Any]:
    """A V4 IDs-only payload."""
    return {"type": kind, "resource": {"id": file_id, "type": "file"}, "account": {"id": "a"}}


def postflow(kind: str, file_id: str, **resource: str) -> dict[str, Any]:
    """A PostFlow-dialect payload."""
    return {"event_type": kind, "resource": {"id": file_id, **resource}}


def build(
    details: FlakyDetails | None = None,
) -> tuple[MemoryJournal, MemoryUploadStore, FixedClock, DeliveryWorker]:
    """A worker wired with fakes."""
    journal, store, clock = MemoryJournal(), MemoryUploadStore(), FixedClock(T0)
    return journal, store, clock, DeliveryWorker(journal, store, clock, details=details)


async def test_events_of_one_file_are_applied_in_arrival_order() -> None:
    """upload.completed, ready, needs_review, approved in one pass end APPROVED with four changes."""
    journal, store, _, worker = build()
    for payload in [
        postflow("file.upload.completed", "f", status="processing"),
        postflow("file.ready", "f"),
        postflow("review.status.changed", "f", review_status="needs_review"),
        postflow("review.status.changed", "f", review_status="approved"),
    ]:
        await append(journal, payload)
    assert await worker.run_once() is True
    record = store.records["f"]
    assert record.status is PostflowStatus.APPROVED
    assert [h.new_status for h in record.history] == [
        PostflowStatus.PROCESSING,
        PostflowStatus.COMPLETED,
        PostflowStatus.WAITING_APPROVAL,
        PostflowStatus.APPROVED,
    ]
    assert len(await journal.due(10)) == 4
    assert (await journal.stats()).backlog == 0


async def test_an_unreadable_delivery_is_quarantined_and_blocks_nothing() -> None:
    """Bytes the core cannot read go to quarantine with a reason; the others are applied."""
    journal, store, _, worker = build()
    await append(journal, b"{broken")
    await append(journal, postflow("file.ready", "ok"))
    await worker.run_once()
    quarantined = await journal.quarantined()
    assert len(quarantined) == 1 and "unreadable" in quarantined[0].reason
    assert store.records["ok"].processing is Processing.READY
    assert await worker.run_once() is False


async def test_a_failed_lookup_defers_the_file_and_later_applies_in_order() -> None:
    """While the API fails, the file's deliveries wait (others go on); then they apply in order."""
    details = FlakyDetails()
    details.files["slow"] = FileInfo("slow", name="slow.mov", status="transcoded")
    journal, store, clock, worker = build(details)
    details.failing = DetailsUnavailableError("Frame.io answered 503")
    await append(journal, v4("file.ready", "slow"))
    await append(journal, v4("file.deleted", "slow"))
    await append(journal, postflow("file.ready", "other"))
    await worker.run_once()
    assert "slow" not in store.records and "other" in store.records
    waiting = await journal.deferred()
    assert [d.event_type for d in waiting] == ["file.ready"]
    assert waiting[0].last_error == "Frame.io answered 503"
    assert await worker.run_once() is False
    details.failing = None
    clock.advance(enrichment_backoff(0))
    await worker.run_once()
    record = store.records["slow"]
    assert record.name == "slow.mov" and record.processing is Processing.READY and record.deleted


async def test_any_lookup_exception_defers_rather_than_stopping_the_worker() -> None:
    """An unexpected error from the API adapter is a deferral with its reason."""
    details = FlakyDetails()
    details.failing = RuntimeError("token refresh exploded")
    journal, _, _, worker = build(details)
    await append(journal, v4("file.ready", "x"))
    await worker.run_once()
    assert (await journal.deferred())[0].last_error == "RuntimeError: token refresh exploded"


async def test_a_lookup_that_never_recovers_ends_in_quarantine() -> None:
    """After the maximum number of attempts the delivery is quarantined, not retried forever."""
    details = FlakyDetails()
    details.failing = DetailsUnavailableError("down")
    journal, _, clock, worker = build(details)
    await append(journal, v4("file.ready", "x"))
    for _ in range(MAX_ENRICH_ATTEMPTS):
        clock.advance(10_000)
        await worker.run_once()
    quarantined = await journal.quarantined()
    assert len(quarantined) == 1 and "kept failing" in quarantined[0].reason


async def test_external_events_are_applied_like_deliveries() -> None:
    """A reconciliation event changes the record and makes the notification due."""
    journal, store, _, worker = build()
    await append(journal, postflow("file.ready", "r"))
    await worker.run_once()
    event = WebhookEvent.reconciliation("r")
    enrichment = Enrichment(file=FileInfo("r", review_status="Approved"))
    assert await worker.apply_external([(event, enrichment)]) == 1
    assert store.records["r"].status is PostflowStatus.APPROVED
    assert store.records["r"].history[-1].event_type == "postflow.reconciled"


async def test_start_repairs_records_committed_but_not_written_to_the_store() -> None:
    """A crash between the journal commit and the store write is repaired at start."""
    journal, store, _, worker = build()
    committed = UploadRecord.new("lost", T0, name="lost.mov")
    await journal.commit(BatchResult(at=T0, records=(committed,)))
    assert "lost" not in store.records
    await worker.start()
    await worker.stop()
    assert store.records["lost"] == committed
    assert await journal.tracker_writes() == []


class FailingSaves(MemoryUploadStore):
    """A memory store whose next ``failures`` saves fail like a full disk."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    async def save(self, records: Any) -> None:
        """Fail, then behave."""
        if self.failures > 0:
            self.failures -= 1
            from postflow_webhooks.domain.errors import StorageError

            raise StorageError("disk full")
        await super().save(records)


async def test_a_failed_store_write_is_caught_up_before_the_store_is_read_again() -> None:
    """After a store write fails, the next pass first writes what the journal holds."""
    journal, clock = MemoryJournal(), FixedClock(T0)
    store = FailingSaves(failures=1)
    worker = DeliveryWorker(journal, store, clock)
    await append(journal, postflow("file.upload.completed", "f", status="processing"))
    with pytest.raises(Exception, match="disk full"):
        await worker.run_once()
    await append(journal, postflow("file.ready", "f"))
    await worker.run_once()
    record = store.records["f"]
    assert [h.new_status for h in record.history] == [
        PostflowStatus.PROCESSING,
        PostflowStatus.COMPLETED,
    ]
    assert await journal.tracker_writes() == []


class Gate:
    """A notification gate that lets through the statuses it is given, and counts the rest."""

    def __init__(self, *allowed: PostflowStatus) -> None:
        self.allowed = set(allowed)
        self.counted = 0

    def wants(self, notification: Any) -> bool:
        """True for the allowed statuses."""
        return notification.new_status in self.allowed

    def skipped(self, count: int) -> None:
        """Count what was not queued."""
        self.counted += count


async def test_notifications_nobody_would_send_are_counted_not_queued() -> None:
    """Only what the gate wants reaches the outbox; the rest is counted as skipped."""
    journal, store, clock = MemoryJournal(), MemoryUploadStore(), FixedClock(T0)
    gate = Gate(PostflowStatus.COMPLETED)
    worker = DeliveryWorker(journal, store, clock, gate=gate)
    await append(journal, postflow("file.upload.completed", "g", status="processing"))
    await append(journal, postflow("file.ready", "g"))
    assert await worker.run_once()
    assert [n.new_status for n in await journal.due(10)] == [PostflowStatus.COMPLETED]
    assert gate.counted == 1
    record = (await store.find_many([("g", None)]))["g"]
    assert record.status is PostflowStatus.COMPLETED


def test_failed_passes_back_off_to_a_cap_however_many_in_a_row() -> None:
    """1 s, doubling, capped at 30 s; a long outage never overflows the arithmetic."""
    assert [failure_backoff(n) for n in (1, 2, 3, 5, 6)] == [1.0, 2.0, 4.0, 16.0, 30.0]
    assert failure_backoff(5000) == 30.0


class BrokenJournal(MemoryJournal):
    """A journal whose queue cannot be read (a storage outage); counts the attempts."""

    def __init__(self) -> None:
        super().__init__()
        self.attempts = 0

    async def pending(self, limit: int, now: datetime) -> Any:
        """Fail, as a database that cannot be read does."""
        self.attempts += 1
        raise StorageError("disk unplugged")


async def test_new_deliveries_do_not_cut_the_backoff_after_a_failed_pass() -> None:
    """During an outage the doorbell keeps ringing; the worker still waits before retrying."""
    journal = BrokenJournal()
    worker = DeliveryWorker(journal, MemoryUploadStore(), FixedClock(T0))
    await worker.start()
    for _ in range(30):
        worker.doorbell.ring()
        await asyncio.sleep(0.01)
    await worker.stop()
    assert journal.attempts == 1
    assert worker.last_error == "StorageError: disk unplugged"
