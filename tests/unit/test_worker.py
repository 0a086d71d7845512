"""The delivery worker over the in-memory database: order, quarantine, deferral, backoff."""

from __future__ import annotations

import asyncio
import json
import math
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from postflow_webhooks.adapters.memory import FixedClock, MemoryDatabase
from postflow_webhooks.adapters.payload import read_body, read_payload
from postflow_webhooks.app.policies import Policies
from postflow_webhooks.domain.announce import AnnouncePolicy
from postflow_webhooks.domain.errors import DetailsUnavailableError, StorageError
from postflow_webhooks.domain.events import WebhookEvent
from postflow_webhooks.domain.journal import IncomingDelivery, PendingDelivery
from postflow_webhooks.domain.records import CommentInfo, Enrichment, FileInfo
from postflow_webhooks.domain.statuses import PostflowStatus, Processing
from postflow_webhooks.service.worker import MAX_ENRICH_ATTEMPTS, DeliveryWorker

T0 = datetime(2026, 3, 1, tzinfo=UTC)
POLICIES = Policies()
ANNOUNCE_ALL = AnnouncePolicy(enabled=True)


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


async def append(
    db: MemoryDatabase, payload: Any, at: datetime = T0, file_id: str | None = None
) -> None:
    """Commit one delivery of ``payload`` (a dict, or raw bytes said to be about ``file_id``)."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    event_type = "file.ready"
    if isinstance(payload, dict):
        event = read_payload(payload)
        event_type, file_id = event.event_type, event.file_id
    await db.append(IncomingDelivery(uuid.uuid4().hex, at, body, event_type, file_id))


def v4(kind: str, file_id: str) -> dict[str, Any]:
    """A V4 IDs-only payload."""
    return {"type": kind, "resource": {"id": file_id, "type": "file"}, "account": {"id": "a"}}


def postflow(kind: str, file_id: str, **resource: str) -> dict[str, Any]:
    """A PostFlow-dialect payload."""
    return {"event_type": kind, "resource": {"id": file_id, **resource}}


def build(
    details: FlakyDetails | None = None,
    *,
    db: MemoryDatabase | None = None,
    announce: AnnouncePolicy = ANNOUNCE_ALL,
    **options: Any,
) -> tuple[MemoryDatabase, FixedClock, DeliveryWorker]:
    """A worker over a memory database, reading with the one parse path."""
    db = db if db is not None else MemoryDatabase()
    clock = FixedClock(T0)
    worker = DeliveryWorker(
        db,
        db,
        read_body,
        clock,
        failure_backoff=POLICIES.worker_failure,
        enrich_backoff=POLICIES.enrichment,
        details=details,
        announce=announce,
        **options,
    )
    return db, clock, worker


async def drain(worker: DeliveryWorker, limit: int = 20) -> int:
    """Run passes until one finds nothing to do; how many passes worked."""
    for worked in range(limit):
        if not await worker.run_once():
            return worked
    raise AssertionError("the worker kept finding work")


# --- order ---------------------------------------------------------------------------

SEED_SEQUENCE = [
    postflow("file.upload.completed", "f", status="processing"),
    postflow("file.ready", "f"),
    postflow("review.status.changed", "f", review_status="needs_review"),
    postflow("review.status.changed", "f", review_status="approved"),
]


@pytest.mark.anyio
@pytest.mark.parametrize("batch_size", [1, 2, 256])
async def test_events_of_one_file_are_applied_in_arrival_order(batch_size: int) -> None:
    """upload.completed, ready, needs_review, approved end APPROVED with four changes, any batch."""
    db, _, worker = build(batch_size=batch_size)
    for payload in SEED_SEQUENCE:
        await append(db, payload)
    assert await drain(worker) == math.ceil(len(SEED_SEQUENCE) / batch_size)
    record = db.records["f"]
    assert record.status is PostflowStatus.APPROVED
    assert [h.new_status for h in record.history] == [
        PostflowStatus.PROCESSING,
        PostflowStatus.COMPLETED,
        PostflowStatus.WAITING_APPROVAL,
        PostflowStatus.APPROVED,
    ]
    assert [n.new_status for n in await db.due(10)] == [h.new_status for h in record.history]
    stats = await db.stats()
    assert stats.backlog == 0
    assert stats.last_event is not None and stats.last_event.outcome == "status_changed"
    assert worker.processed_total == 4


@pytest.mark.anyio
async def test_files_interleaved_in_one_pass_each_keep_their_own_order() -> None:
    """Two files' deliveries mixed in one pass each end where their own order leads."""
    db, _, worker = build()
    await append(db, postflow("file.ready", "a"))
    await append(db, postflow("file.upload.completed", "b", status="processing"))
    await append(db, postflow("review.status.changed", "a", review_status="approved"))
    await append(db, postflow("file.ready", "b"))
    await append(db, postflow("review.status.changed", "a", review_status="rejected"))
    await drain(worker)
    assert db.records["a"].status is PostflowStatus.REJECTED
    assert db.records["b"].status is PostflowStatus.COMPLETED


# --- quarantine ----------------------------------------------------------------------


@pytest.mark.anyio
async def test_an_unreadable_delivery_is_quarantined_and_blocks_nothing() -> None:
    """Bytes that do not read go to quarantine with a reason; the others, same file too, apply."""
    db, _, worker = build()
    await append(db, b"{broken", file_id="f")
    await append(db, json.dumps({"type": "file.ready", "resource": {"id": ""}}).encode())
    await append(db, postflow("file.ready", "f"))
    await append(db, postflow("file.ready", "ok"))
    await drain(worker)
    quarantined = await db.quarantined()
    assert len(quarantined) == 2
    assert all(q.reason.startswith("unreadable delivery") for q in quarantined)
    assert "not JSON" in quarantined[0].reason
    assert "$.resource.id" in quarantined[1].reason
    assert db.records["f"].processing is Processing.READY
    assert db.records["ok"].processing is Processing.READY
    stats = await db.stats()
    assert (stats.backlog, stats.quarantined) == (0, 2)


@pytest.mark.anyio
async def test_a_requeued_delivery_is_read_again() -> None:
    """A quarantined delivery put back in the queue is read again by the next pass."""
    db, _, worker = build()
    await append(db, b"{broken")
    await drain(worker)
    (quarantined,) = await db.quarantined()
    assert await db.requeue([quarantined.seq]) == 1
    await drain(worker)
    assert [q.seq for q in await db.quarantined()] == [quarantined.seq]


# --- deferral ------------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_failed_lookup_defers_the_file_and_later_applies_in_order() -> None:
    """While the API fails the file's deliveries wait (others go on); then they apply in order."""
    details = FlakyDetails()
    details.files["slow"] = FileInfo("slow", name="slow.mov", status="transcoded")
    db, clock, worker = build(details)
    details.failing = DetailsUnavailableError("Frame.io answered 503")
    await append(db, v4("file.ready", "slow"))
    await append(db, v4("file.deleted", "slow"))
    await append(db, postflow("file.ready", "other"))
    assert await worker.run_once() is True
    assert "slow" not in db.records and "other" in db.records
    waiting = await db.deferred()
    assert [d.event_type for d in waiting] == ["file.ready"]
    assert waiting[0].last_error == "Frame.io answered 503"
    assert waiting[0].attempts == 1
    first_wait = timedelta(seconds=POLICIES.enrichment(1))
    assert await db.next_due() == T0 + first_wait
    # A delivery of the same file arriving meanwhile waits behind the deferred one.
    await append(db, postflow("file.status.changed", "slow", status="needs_review"))
    assert await worker.run_once() is False
    assert details.calls == 1
    details.failing = None
    clock.advance(first_wait.total_seconds())
    await drain(worker)
    record = db.records["slow"]
    assert record.name == "slow.mov" and record.processing is Processing.READY
    assert record.deleted
    assert record.status is PostflowStatus.COMPLETED
    assert (await db.stats()).backlog == 0


@pytest.mark.anyio
async def test_any_lookup_exception_defers_rather_than_stopping_the_worker() -> None:
    """An unexpected error from the API adapter is a deferral with its reason."""
    details = FlakyDetails()
    details.failing = RuntimeError("token refresh exploded")
    db, _, worker = build(details)
    await append(db, v4("file.ready", "x"))
    assert await worker.run_once() is True
    (waiting,) = await db.deferred()
    assert waiting.last_error == "RuntimeError: token refresh exploded"
    assert await db.quarantined() == []


@pytest.mark.anyio
async def test_a_lookup_that_never_recovers_ends_in_quarantine() -> None:
    """Each failure waits the enrichment backoff; after max_enrich_attempts it is quarantined."""
    details = FlakyDetails()
    details.failing = DetailsUnavailableError("down")
    db, clock, worker = build(details, max_enrich_attempts=5)
    await append(db, v4("file.ready", "x"))
    await append(db, v4("file.ready", "x"))
    for attempt in range(1, 5):
        await worker.run_once()
        (waiting,) = await db.deferred()
        assert waiting.attempts == attempt
        expected = clock.now() + timedelta(seconds=POLICIES.enrichment(attempt))
        assert waiting.not_before == expected
        clock.advance(10_000)
    await worker.run_once()
    assert await db.deferred() == []
    quarantined = await db.quarantined()
    assert len(quarantined) == 1 and "kept failing: down" in quarantined[0].reason
    # The file's next delivery is no longer held: it is tried (and deferred) on its own.
    await worker.run_once()
    assert [d.attempts for d in await db.deferred()] == [1]


@pytest.mark.anyio
async def test_the_default_attempt_limit_is_reached_too() -> None:
    """With the default limit, a delivery is quarantined after MAX_ENRICH_ATTEMPTS passes."""
    details = FlakyDetails()
    details.failing = DetailsUnavailableError("down")
    db, clock, worker = build(details)
    await append(db, v4("file.ready", "x"))
    for _ in range(MAX_ENRICH_ATTEMPTS - 1):
        await worker.run_once()
        clock.advance(10_000)
    assert await db.quarantined() == []
    await worker.run_once()
    assert len(await db.quarantined()) == 1
    assert details.calls == MAX_ENRICH_ATTEMPTS


# --- external events, announcements, commits ---------------------------------------------


@pytest.mark.anyio
async def test_external_events_are_applied_like_deliveries() -> None:
    """A reconciliation event changes the record and makes its notification due."""
    db, _, worker = build()
    await append(db, postflow("file.ready", "r"))
    await worker.run_once()
    before = len(await db.due(10))
    event = WebhookEvent.reconciliation("r")
    enrichment = Enrichment(file=FileInfo("r", review_status="Approved"))
    assert await worker.apply_external([(event, enrichment)]) == 1
    record = db.records["r"]
    assert record.status is PostflowStatus.APPROVED
    assert record.history[-1].event_type == "postflow.reconciled"
    due = await db.due(10)
    assert len(due) == before + 1 and due[-1].new_status is PostflowStatus.APPROVED
    stats = await db.stats()
    assert stats.last_event is not None and stats.last_event.event_type == "postflow.reconciled"
    assert stats.backlog == 0


@pytest.mark.anyio
async def test_external_events_that_change_nothing_make_nothing_due() -> None:
    """Applying the same reconciliation twice makes one notification, then none."""
    db, _, worker = build()
    event = WebhookEvent.reconciliation("r")
    enrichment = Enrichment(file=FileInfo("r", status="ready"))
    assert await worker.apply_external([(event, enrichment)]) == 1
    assert await worker.apply_external([(event, enrichment)]) == 0
    assert db.records["r"].status is PostflowStatus.COMPLETED


@pytest.mark.anyio
async def test_notifications_the_policy_does_not_want_are_counted_not_queued() -> None:
    """Only what the announce policy wants reaches the outbox; the rest is counted."""
    policy = AnnouncePolicy(enabled=True, statuses=frozenset({PostflowStatus.COMPLETED}))
    db, _, worker = build(announce=policy)
    await append(db, postflow("file.upload.completed", "g", status="processing"))
    await append(db, postflow("file.ready", "g"))
    await append(db, {"event_type": "comment.created", "resource": {"id": "g", "text": "hi"}})
    assert await worker.run_once()
    assert [n.new_status for n in await db.due(10)] == [PostflowStatus.COMPLETED]
    assert worker.unannounced_total == 2
    record = await db.find("g")
    assert record is not None and record.status is PostflowStatus.COMPLETED
    assert record.comment_count == 1


@pytest.mark.anyio
async def test_without_a_destination_nothing_is_queued() -> None:
    """The default policy (no destination) queues nothing and counts every notification."""
    db, _, worker = build(announce=AnnouncePolicy())
    for payload in SEED_SEQUENCE:
        await append(db, payload)
    await drain(worker)
    assert await db.due(10) == []
    assert worker.unannounced_total == 4
    assert db.records["f"].status is PostflowStatus.APPROVED


@pytest.mark.anyio
async def test_after_commit_is_called_for_passes_that_changed_records() -> None:
    """The after-commit hook rings once per pass that changed something, never for empty ones."""
    rings: list[int] = []
    db, _, worker = build(after_commit=lambda: rings.append(1))
    assert await worker.run_once() is False
    await append(db, postflow("file.ready", "f"))
    await append(db, postflow("file.ready", "f"))
    await worker.run_once()
    assert rings == [1]
    await append(db, {"type": "folder.created"})
    await worker.run_once()
    assert rings == [1]


# --- the loop ----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_started_worker_applies_what_arrives_after_a_wake() -> None:
    """start, a delivery and a wake: the running loop applies it; stop ends the loop."""
    db, _, worker = build()
    await worker.start()
    assert worker.alive
    await append(db, postflow("file.ready", "late"))
    worker.wake()
    for _ in range(500):
        if "late" in db.records:
            break
        await asyncio.sleep(0.01)
    await worker.stop()
    assert not worker.alive
    assert db.records["late"].processing is Processing.READY


class BrokenQueue(MemoryDatabase):
    """A database whose queue cannot be read (a storage outage); counts the attempts."""

    def __init__(self) -> None:
        super().__init__()
        self.attempts = 0

    async def pending(self, limit: int, now: datetime) -> list[PendingDelivery]:
        """Fail, as a database that cannot be read does."""
        self.attempts += 1
        raise StorageError("disk unplugged")


class RecordingSleep:
    """An injected sleep: records each wait; from the ``block_after``-th on, it never returns."""

    def __init__(self, block_after: int) -> None:
        self.waits: list[float] = []
        self.block_after = block_after
        self.blocked = asyncio.Event()

    async def __call__(self, seconds: float) -> None:
        """Record the wait; return at once, or block (until the worker is stopped)."""
        self.waits.append(seconds)
        if len(self.waits) >= self.block_after:
            self.blocked.set()
            await asyncio.Event().wait()


@pytest.mark.anyio
async def test_new_deliveries_do_not_cut_the_backoff_after_a_failed_pass() -> None:
    """During an outage wakes keep coming; the worker still waits out its backoff."""
    db = BrokenQueue()
    sleep = RecordingSleep(block_after=1)
    _, _, worker = build(db=db, sleep=sleep)
    await worker.start()
    await asyncio.wait_for(sleep.blocked.wait(), timeout=10)
    for _ in range(30):
        worker.wake()
        await asyncio.sleep(0.005)
    await worker.stop()
    assert db.attempts == 1
    assert sleep.waits == [POLICIES.worker_failure(1)]
    assert worker.last_error == "StorageError: disk unplugged"


@pytest.mark.anyio
async def test_ten_thousand_failed_passes_never_overflow_the_backoff() -> None:
    """10,000 failed passes in a row: every wait is finite and at most 30 s, the last ones 30 s."""
    db = BrokenQueue()
    sleep = RecordingSleep(block_after=10_000)
    _, _, worker = build(db=db, sleep=sleep)
    await worker.start()
    await asyncio.wait_for(sleep.blocked.wait(), timeout=100)
    await worker.stop()
    assert len(sleep.waits) == 10_000
    assert db.attempts == 10_000
    assert all(math.isfinite(w) and 0 < w <= 30.0 for w in sleep.waits)
    assert sleep.waits[:6] == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0]
    assert set(sleep.waits[-9_000:]) == {30.0}
    assert sleep.waits == sorted(sleep.waits)
    assert not worker.alive


@pytest.mark.parametrize(
    ("name", "cap"),
    [
        ("enrichment", 300.0),
        ("worker_failure", 30.0),
        ("notification_outage", 300.0),
        ("tracker_failure", 60.0),
        ("registration", 300.0),
    ],
)
def test_every_backoff_policy_gives_finite_capped_waits_up_to_ten_thousand(
    name: str, cap: float
) -> None:
    """For attempt numbers 1 to 10,000 each policy's wait is finite, positive and capped."""
    backoff = getattr(Policies(), name)
    waits = [backoff(n) for n in range(1, 10_001)]
    assert all(math.isfinite(w) and 0 < w <= cap for w in waits)
    assert waits[-1] == cap
    assert max(waits[:3]) < cap


def test_the_enrichment_backoff_doubles_from_one_second_to_five_minutes() -> None:
    """Enrichment waits 1, 2, 4 ... seconds, then 300 s for every later attempt."""
    enrichment = Policies().enrichment
    assert [enrichment(n) for n in range(1, 10)] == [1, 2, 4, 8, 16, 32, 64, 128, 256]
    assert {enrichment(n) for n in (10, 11, 100, 1_000, 10_000)} == {300.0}


class SlowFailingDetails(FlakyDetails):
    """Frame.io down; each failed lookup takes hours of the worker's clock; the second waits."""

    def __init__(self, clock: FixedClock) -> None:
        super().__init__()
        self.clock = clock
        self.failing = DetailsUnavailableError("Frame.io: no answer")
        self.release = asyncio.Event()

    async def file(
        self, file_id: str, account_id: str | None = None, *, fresh: bool = False
    ) -> FileInfo | None:
        """Fail, once time has passed (so the deferral is due again at once)."""
        self.clock.advance(10_000)
        if self.calls >= 1:
            await self.release.wait()
        return await super().file(file_id, account_id, fresh=fresh)


@pytest.mark.anyio
async def test_stopping_does_not_keep_retrying_deferred_deliveries() -> None:
    """Frame.io down at shutdown: stop ends after the pass in flight, the delivery still pending."""
    db, clock = MemoryDatabase(), FixedClock(T0)
    details = SlowFailingDetails(clock)
    worker = DeliveryWorker(
        db,
        db,
        read_body,
        clock,
        failure_backoff=POLICIES.worker_failure,
        enrich_backoff=POLICIES.enrichment,
        details=details,
        announce=ANNOUNCE_ALL,
    )
    await append(db, v4("file.ready", "stuck"))
    await worker.start()
    for _ in range(500):
        if details.calls == 1 and not details.release.is_set():
            break
        await asyncio.sleep(0.01)
    stopping = asyncio.create_task(worker.stop())
    await asyncio.sleep(0.05)
    details.release.set()  # the pass in flight (the second attempt) fails now
    await stopping
    assert details.calls == 2
    assert [d.file_id for d in await db.deferred()] == ["stuck"]
