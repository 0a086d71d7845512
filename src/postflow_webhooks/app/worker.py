"""The delivery worker: applies committed deliveries with the core, in order.

One pass reads a batch of due deliveries, applies each through the pure
``apply_event`` (enriching IDs-only deliveries through the file-details port
when one is wired), and commits the new records, the due notifications, the
processed marks and the stats in one journal transaction. The records are then
written to the upload store; a crash in between is repaired on the next start
from the journal's pending tracker writes.

A delivery the core cannot read is quarantined with its reason. A delivery
whose enrichment fails waits with backoff, and so do the later deliveries for
the same file, so a file's events are never applied out of order.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Protocol

import attrs

from postflow_webhooks.app.enrichment import enrich
from postflow_webhooks.app.handoff import Doorbell, RecentEvents
from postflow_webhooks.domain.errors import DetailsUnavailableError, DomainError, StorageError
from postflow_webhooks.domain.events import EventKind, WebhookEvent
from postflow_webhooks.domain.journal import (
    BatchResult,
    Deferral,
    LastEvent,
    PendingDelivery,
    Quarantine,
)
from postflow_webhooks.domain.ports import Clock, DeliveryQueue, FileDetails, UploadStore
from postflow_webhooks.domain.records import Enrichment, Notification, UploadRecord
from postflow_webhooks.domain.service import apply_event, target_file_id

log = logging.getLogger("postflow_webhooks.worker")

MAX_ENRICH_ATTEMPTS = 50
MAX_BACKOFF_SECONDS = 300.0
MAX_FAILURE_WAIT = 30.0


def failure_backoff(failures: int) -> float:
    """Seconds to wait after ``failures`` failed passes in a row (1 s doubling, capped)."""
    return float(min(MAX_FAILURE_WAIT, 2.0 ** min(failures - 1, 16)))


def enrichment_backoff(attempts: int) -> float:
    """Seconds to wait before enrichment attempt ``attempts + 1`` (exponential, capped)."""
    return float(min(MAX_BACKOFF_SECONDS, 2.0 ** min(attempts, 16)))


@attrs.define
class _Pass:
    """What one pass has decided so far."""

    processed: list[int] = attrs.Factory(list)
    deferred: list[Deferral] = attrs.Factory(list)
    quarantined: list[Quarantine] = attrs.Factory(list)
    records: dict[str, UploadRecord] = attrs.Factory(dict)
    notifications: list[Notification] = attrs.Factory(list)
    held: set[str] = attrs.Factory(set)
    last: LastEvent | None = None
    # Notifications the gate said nobody would send: counted, not queued.
    unqueued: int = 0


@attrs.frozen
class _Ready:
    """A delivery parsed and enriched, waiting to be applied."""

    delivery: PendingDelivery
    event: WebhookEvent
    enrichment: Enrichment
    file_id: str | None
    name: str | None
    started: float


class NotificationGate(Protocol):
    """Which due notifications are worth queuing (the dispatcher knows what it would send)."""

    def wants(self, notification: Notification) -> bool:
        """True if the notification would be sent; the others are not queued at all."""
        ...

    def skipped(self, count: int) -> None:
        """Count notifications that were not queued."""
        ...


class DeliveryWorker:
    """Runs passes until stopped; each pass is one transaction."""

    def __init__(
        self,
        queue: DeliveryQueue,
        store: UploadStore,
        clock: Clock,
        *,
        details: FileDetails | None = None,
        doorbell: Doorbell | None = None,
        batch_size: int = 256,
        idle_wait: float = 0.5,
        retention: timedelta = timedelta(days=7),
        recent: RecentEvents | None = None,
        after_commit: Callable[[], None] | None = None,
        gate: NotificationGate | None = None,
    ) -> None:
        self._after_commit = after_commit
        self._gate = gate
        self._pass_lock = asyncio.Lock()
        self._store_behind = False
        self.recent = recent or RecentEvents()
        self._queue = queue
        self._store = store
        self._clock = clock
        self._details = details
        self.doorbell = doorbell or Doorbell()
        self._batch_size = batch_size
        self._idle_wait = idle_wait
        self._retention = retention
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._stop_requested = asyncio.Event()
        self.last_pass_at: datetime | None = None
        self.last_error: str | None = None
        self.processed_total = 0

    @property
    def alive(self) -> bool:
        """True while the worker task runs."""
        return self._task is not None and not self._task.done()

    @property
    def pid(self) -> int:
        """This process: the worker runs in the receiver's own."""
        return os.getpid()

    restarts = 0

    async def start(self) -> None:
        """Repair pending tracker writes, then run passes in the background."""
        self.doorbell.bind()
        await self.flush_tracker_writes()
        self._stopping = False
        self._stop_requested = asyncio.Event()
        self._task = asyncio.create_task(self._run(), name="delivery-worker")

    async def stop(self) -> None:
        """Finish the current pass, drain what is due, and stop."""
        self._stopping = True
        self._stop_requested.set()
        self.doorbell.ring()
        if self._task is not None:
            await self._task
            self._task = None

    async def _run(self) -> None:
        last_prune = 0.0
        failures = 0
        while True:
            try:
                worked = await self.run_once()
                self.last_error = None
            except Exception as exc:  # storage outage, or a bug: never stop for good
                failures += 1
                wait = failure_backoff(failures)
                self.last_error = f"{type(exc).__name__}: {exc}"
                if failures == 1 or failures % 10 == 0:
                    unexpected = not isinstance(exc, StorageError | OSError)
                    log.error(
                        "worker pass failed (%d in a row), retrying in %.0f s: %s",
                        failures,
                        wait,
                        exc,
                        exc_info=unexpected,
                    )
                worked = False
                # New deliveries ring the doorbell all the time: only a stop cuts this wait.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop_requested.wait(), wait)
                if self._stopping:
                    return
                continue
            else:
                if failures:
                    log.info("worker recovered after %d failed passes", failures)
                failures = 0
            if self._stopping and not worked:
                return
            if time.monotonic() - last_prune > 3600:
                last_prune = time.monotonic()
                await self._prune()
            if not worked:
                await self.doorbell.wait(self._idle_wait)

    async def _prune(self) -> None:
        try:
            gone = await self._queue.prune(self._clock.now() - self._retention)
        except StorageError as exc:
            log.warning("pruning failed: %s", exc)
            return
        if gone:
            log.info("pruned %d processed deliveries and settled notifications", gone)

    async def flush_tracker_writes(self) -> int:
        """Write records committed in the journal but not yet in the store."""
        pending = await self._queue.tracker_writes()
        if pending:
            await self._store.save(pending)
            await self._queue.clear_tracker_writes(pending)
        return len(pending)

    async def run_once(self) -> bool:
        """One pass; True when it processed, deferred or quarantined anything."""
        async with self._pass_lock:
            return await self._pass()

    async def apply_external(self, items: Sequence[tuple[WebhookEvent, Enrichment]]) -> int:
        """Apply events that did not come as deliveries (reconciliation), like deliveries.

        Runs between passes, so a file is never read and written by two at once;
        returns how many notifications the changes made due.
        """
        async with self._pass_lock:
            await self._catch_up()
            now = self._clock.now()
            state = _Pass()
            ready = []
            for event, enrichment in items:
                file_id = target_file_id(event, enrichment)
                name = enrichment.file.name if enrichment.file else None
                delivery = PendingDelivery(
                    seq=0,
                    delivery_id=f"{event.event_type}-{uuid.uuid4().hex[:12]}",
                    received_at=now,
                    body=b"",
                    event_type=event.event_type,
                    file_id=file_id,
                )
                ready.append(
                    _Ready(delivery, event, enrichment, file_id, name, time.perf_counter())
                )
            await self._apply_all(ready, state)
            await self._commit(state, now, processed=False)
            return len(state.notifications)

    async def _apply_all(self, ready: list[_Ready], state: _Pass) -> None:
        keys = [(item.file_id, item.name) for item in ready if item.file_id is not None]
        known = await self._store.find_many(keys) if keys else {}
        for item in ready:
            self._apply(item, known, state)

    async def _commit(self, state: _Pass, now: datetime, *, processed: bool = True) -> None:
        records = tuple(state.records.values())
        await self._queue.commit(
            BatchResult(
                at=now,
                processed=tuple(state.processed) if processed else (),
                deferred=tuple(state.deferred),
                quarantined=tuple(state.quarantined),
                records=records,
                notifications=tuple(state.notifications),
                last_event=state.last,
            )
        )
        if processed:
            self.processed_total += len(state.processed)
        if records and not self._queue.commits_records:
            # Until the store has these, the next pass must not read it.
            self._store_behind = True
            await self._store.save(records)
            await self._queue.clear_tracker_writes(records)
            self._store_behind = False
        if state.unqueued and self._gate is not None:
            self._gate.skipped(state.unqueued)
        if state.notifications and self._after_commit is not None:
            self._after_commit()

    async def _catch_up(self) -> None:
        """Bring the store up to the journal before reading it (after a failed write)."""
        if self._store_behind:
            await self.flush_tracker_writes()
            self._store_behind = False

    async def _pass(self) -> bool:
        await self._catch_up()
        now = self._clock.now()
        batch = await self._queue.pending(self._batch_size, now)
        self.last_pass_at = now
        if not batch:
            return False
        state = _Pass()
        ready: list[_Ready] = []
        for delivery in batch:
            item = await self._prepare(delivery, state, now)
            if item is not None:
                ready.append(item)
        await self._apply_all(ready, state)
        await self._commit(state, now)
        return True

    async def _prepare(
        self, delivery: PendingDelivery, state: _Pass, now: datetime
    ) -> _Ready | None:
        """Parse and enrich; ``None`` when the delivery waits, is held or is quarantined."""
        if delivery.file_id is not None and delivery.file_id in state.held:
            return None
        started = time.perf_counter()
        event = self.recent.take(delivery.delivery_id)
        if event is None:
            try:
                event = WebhookEvent.from_payload(json.loads(delivery.body))
            except (ValueError, DomainError, RecursionError) as exc:
                self._quarantine(delivery, state, f"unreadable delivery: {exc}")
                return None
        try:
            enrichment = await self._enrich(event)
        except DetailsUnavailableError as exc:
            self._defer(delivery, state, now, str(exc))
            return None
        except Exception as exc:  # any other lookup failure waits and retries too
            self._defer(delivery, state, now, f"{type(exc).__name__}: {exc}")
            return None
        file_id = target_file_id(event, enrichment)
        if event.kind is EventKind.OTHER:
            file_id = None
        name = event.name or (enrichment.file.name if enrichment.file else None)
        return _Ready(delivery, event, enrichment, file_id, name, started)

    def _apply(self, item: _Ready, known: dict[str, UploadRecord], state: _Pass) -> None:
        """Apply one prepared delivery on top of what this pass already decided."""
        delivery, event = item.delivery, item.event
        record = None
        if item.file_id is not None:
            record = state.records.get(item.file_id) or known.get(item.file_id)
        try:
            decision = apply_event(
                record,
                event,
                item.enrichment,
                at=delivery.received_at,
                delivery_id=delivery.delivery_id,
            )
        except Exception as exc:  # a bug in the core must not block the queue
            self._quarantine(delivery, state, f"the core failed: {type(exc).__name__}: {exc}")
            return
        if decision.record is not None:
            state.records[decision.record.file_id] = decision.record
        gate = self._gate
        for notification in decision.notifications:
            if gate is None or gate.wants(notification):
                state.notifications.append(notification)
            else:
                state.unqueued += 1
        state.processed.append(delivery.seq)
        state.last = LastEvent(
            delivery_id=delivery.delivery_id,
            event_type=event.event_type,
            file_id=decision.file_id,
            outcome=decision.outcome.value,
            at=delivery.received_at,
        )
        if log.isEnabledFor(logging.INFO):
            log.info(
                "delivery %s event=%s file=%s outcome=%s duration_ms=%.1f",
                delivery.delivery_id,
                event.event_type,
                decision.file_id or "-",
                decision.outcome.value,
                (time.perf_counter() - item.started) * 1000,
            )

    async def _enrich(self, event: WebhookEvent) -> Enrichment:
        if self._details is None:
            return Enrichment()
        return await enrich(self._details, event)

    def _defer(self, delivery: PendingDelivery, state: _Pass, now: datetime, reason: str) -> None:
        if delivery.file_id is not None:
            state.held.add(delivery.file_id)
        if delivery.attempts + 1 >= MAX_ENRICH_ATTEMPTS:
            self._quarantine(delivery, state, f"enrichment kept failing: {reason}")
            return
        wait = timedelta(seconds=enrichment_backoff(delivery.attempts))
        state.deferred.append(Deferral(delivery.seq, now + wait, reason))
        log.warning(
            "delivery %s event=%s file=%s outcome=deferred reason=%s retry_in_s=%.0f",
            delivery.delivery_id,
            delivery.event_type,
            delivery.file_id or "-",
            reason,
            wait.total_seconds(),
        )

    def _quarantine(self, delivery: PendingDelivery, state: _Pass, reason: str) -> None:
        if delivery.file_id is not None:
            state.held.add(delivery.file_id)
        state.quarantined.append(Quarantine(delivery.seq, reason))
        log.error(
            "delivery %s event=%s file=%s outcome=quarantined reason=%s",
            delivery.delivery_id,
            delivery.event_type,
            delivery.file_id or "-",
            reason,
        )
