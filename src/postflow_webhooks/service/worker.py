"""Applying deliveries: the worker reads what is due, applies it with the rules, commits once.

One pass reads a batch of due deliveries in arrival order. Each is read from
its stored bytes, enriched through the file-details port when it carries IDs
only, and applied with ``apply_event`` on top of what the same pass already
decided for that file. The pass then commits the processed marks, the new
records, the notifications worth sending and the last event in one
transaction (``DeliveryQueue.commit``).

A delivery that cannot be read or applied is quarantined with its reason. A
delivery whose enrichment fails waits with backoff, and so do the later
deliveries for the same file, so a file's events are never applied out of order.

The studio's review mapping is passed to the rules with every event; a
review-field value it does not know decides nothing, is logged once and kept
in ``unmapped_options`` for the status page. The announce policy addresses
each due notification (its route and mentions) before it is queued.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import NamedTuple

import attrs

from postflow_webhooks.domain.announce import AnnouncePolicy
from postflow_webhooks.domain.errors import DetailsUnavailableError, StorageError
from postflow_webhooks.domain.events import EventKind, WebhookEvent
from postflow_webhooks.domain.journal import (
    BatchResult,
    Deferral,
    LastEvent,
    PendingDelivery,
    Quarantine,
)
from postflow_webhooks.domain.mapping import DEFAULT_REVIEW_MAPPING, ReviewMapping
from postflow_webhooks.domain.ports import (
    Backoff,
    Clock,
    DeliveryQueue,
    EventReader,
    FileDetails,
    NameDirectory,
    RecordStore,
    Sleep,
)
from postflow_webhooks.domain.records import Enrichment, Notification, UploadRecord
from postflow_webhooks.domain.rules import apply_event, target_file_id
from postflow_webhooks.service.control import LoopControl
from postflow_webhooks.service.enrichment import Enricher

log = logging.getLogger("postflow_webhooks.worker")

MAX_ENRICH_ATTEMPTS = 50


class Settled(NamedTuple):
    """One delivery a pass settled: its event type, outcome and when it was received.

    A named tuple: one is made per delivery, on the hot path.
    """

    event_type: str
    outcome: str
    received_at: datetime


PassReport = Callable[[Sequence[Settled], datetime], None]
"""Told after each committed pass what it settled and when it committed (for metrics)."""


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
    unannounced: int = 0
    applied: list[tuple[str, str, str, str, float]] = attrs.Factory(list)
    settled: list[Settled] = attrs.Factory(list)


@attrs.frozen
class _Ready:
    """A delivery read and enriched, waiting to be applied."""

    delivery: PendingDelivery
    event: WebhookEvent
    enrichment: Enrichment
    file_id: str | None
    started: float


class DeliveryWorker:
    """Runs passes until stopped; each pass is one transaction."""

    def __init__(
        self,
        queue: DeliveryQueue,
        records: RecordStore,
        read_event: EventReader,
        clock: Clock,
        *,
        failure_backoff: Backoff,
        enrich_backoff: Backoff,
        details: FileDetails | None = None,
        announce: AnnouncePolicy | None = None,
        review: ReviewMapping = DEFAULT_REVIEW_MAPPING,
        directory: NameDirectory | None = None,
        sleep: Sleep = asyncio.sleep,
        batch_size: int = 256,
        max_enrich_attempts: int = MAX_ENRICH_ATTEMPTS,
        after_commit: Callable[[], None] | None = None,
        report: PassReport | None = None,
    ) -> None:
        self._queue = queue
        self._records = records
        self._read = read_event
        self._clock = clock
        self._failure_backoff = failure_backoff
        self._enrich_backoff = enrich_backoff
        self._enrich = Enricher(details, records, directory)
        self._announce = announce or AnnouncePolicy()
        self._review = review
        self._batch_size = batch_size
        self._max_attempts = max_enrich_attempts
        self._after_commit = after_commit
        self._report = report
        self._control = LoopControl(sleep)
        self._pass_lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self.last_pass_at: datetime | None = None
        self.last_error: str | None = None
        self.processed_total = 0
        self.unannounced_total = 0
        self.unmapped_options: dict[str, int] = {}

    @property
    def alive(self) -> bool:
        """True while the worker's loop runs."""
        return self._task is not None and not self._task.done()

    def wake(self) -> None:
        """New deliveries were committed: look now."""
        self._control.wake()

    async def start(self) -> None:
        """Run passes in the background, starting with whatever is pending."""
        self._control.restart()
        self._task = asyncio.create_task(self.run(), name="delivery-worker")

    async def stop(self) -> None:
        """Finish the current pass, apply what is due, and stop."""
        self._control.stop()
        if self._task is not None:
            await self._task
            self._task = None

    async def run(self) -> None:
        """Passes until stopped: at once while there is work, else on a ring or a due time."""
        failures = 0
        while True:
            try:
                worked = await self.run_once()
            except Exception as exc:  # storage outage, or a bug: never stop for good
                failures += 1
                wait = self._failure_backoff(failures)
                self.last_error = f"{type(exc).__name__}: {exc}"
                if failures == 1 or failures % 10 == 0:
                    log.error(
                        "worker pass failed (%d in a row), retrying in %.1f s: %s",
                        failures,
                        wait,
                        exc,
                        exc_info=not isinstance(exc, StorageError | OSError),
                    )
                # New deliveries keep ringing: only a stop cuts this wait short.
                if not await self._control.pause(wait):
                    return
                continue
            if failures:
                log.info("worker recovered after %d failed passes", failures)
            failures = 0
            self.last_error = None
            if worked:
                continue
            if self._control.stopping:
                return
            await self._control.idle(await self._until_next_due())

    async def _until_next_due(self) -> float | None:
        due = await self._queue.next_due()
        if due is None:
            return None
        return max((due - self._clock.now()).total_seconds(), 0.0) + 0.01

    async def run_once(self) -> bool:
        """One pass; True when it processed, deferred or quarantined anything."""
        async with self._pass_lock:
            now = self._clock.now()
            batch = await self._queue.pending(self._batch_size, now)
            self.last_pass_at = now
            if not batch:
                return False
            state = _Pass()
            ready = []
            for delivery in batch:
                item = await self._prepare(delivery, state, now)
                if item is not None:
                    ready.append(item)
            await self._apply_all(ready, state)
            await self._commit(state, now, processed=True)
            return True

    async def apply_external(self, items: Sequence[tuple[WebhookEvent, Enrichment]]) -> int:
        """Apply events that did not come as deliveries (reconciliation), like deliveries.

        Runs between passes, so a file is never read and written by two at once;
        returns how many notifications the changes made due.
        """
        async with self._pass_lock:
            now = self._clock.now()
            state = _Pass()
            ready = []
            for event, enrichment in items:
                delivery = PendingDelivery(
                    seq=0,
                    delivery_id=f"{event.event_type}-{uuid.uuid4().hex[:12]}",
                    received_at=now,
                    body=b"",
                    event_type=event.event_type,
                    file_id=event.file_id,
                )
                file_id = target_file_id(event, enrichment)
                ready.append(_Ready(delivery, event, enrichment, file_id, time.perf_counter()))
            await self._apply_all(ready, state)
            await self._commit(state, now, processed=False)
            return len(state.notifications)

    async def _apply_all(self, ready: list[_Ready], state: _Pass) -> None:
        file_ids = [item.file_id for item in ready if item.file_id is not None]
        known = await self._records.find_many(file_ids) if file_ids else {}
        for item in ready:
            self._apply(item, known, state)

    async def _commit(self, state: _Pass, now: datetime, *, processed: bool) -> None:
        await self._queue.commit(
            BatchResult(
                at=now,
                processed=tuple(state.processed) if processed else (),
                deferred=tuple(state.deferred),
                quarantined=tuple(state.quarantined),
                records=tuple(state.records.values()),
                notifications=tuple(state.notifications),
                last_event=state.last,
            )
        )
        if processed:
            self.processed_total += len(state.processed)
            if self._report is not None and state.settled:
                self._report(state.settled, self._clock.now())
        self.unannounced_total += state.unannounced
        if log.isEnabledFor(logging.INFO):
            for applied in state.applied:
                log.info("delivery %s event=%s file=%s outcome=%s duration_ms=%.1f", *applied)
        if (state.records or state.notifications) and self._after_commit is not None:
            self._after_commit()

    async def _prepare(
        self, delivery: PendingDelivery, state: _Pass, now: datetime
    ) -> _Ready | None:
        """Read and enrich; ``None`` when the delivery waits, is held or is quarantined."""
        if delivery.file_id is not None and delivery.file_id in state.held:
            return None
        started = time.perf_counter()
        try:
            event = self._read(delivery.body)
        except Exception as exc:  # bytes that no longer read, whatever the reason
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
        file_id = None if event.kind is EventKind.OTHER else target_file_id(event, enrichment)
        return _Ready(delivery, event, enrichment, file_id, started)

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
                mapping=self._review,
            )
        except Exception as exc:  # a bug in the rules must not block the queue
            self._quarantine(delivery, state, f"the rules failed: {type(exc).__name__}: {exc}")
            return
        if decision.record is not None:
            state.records[decision.record.file_id] = decision.record
        if decision.unmapped_option is not None:
            self._unmapped(decision.unmapped_option, decision.file_id)
        for notification in decision.notifications:
            addressed = self._announce.address(notification)
            if addressed is not None:
                state.notifications.append(addressed)
            else:
                state.unannounced += 1
        if delivery.seq:
            state.processed.append(delivery.seq)
            state.settled.append(
                Settled(event.event_type, decision.outcome.value, delivery.received_at)
            )
        state.last = LastEvent(
            delivery_id=delivery.delivery_id,
            event_type=event.event_type,
            file_id=decision.file_id,
            outcome=decision.outcome.value,
            at=delivery.received_at,
        )
        state.applied.append(
            (
                delivery.delivery_id,
                event.event_type,
                decision.file_id or "-",
                decision.outcome.value,
                (time.perf_counter() - item.started) * 1000,
            )
        )

    def _unmapped(self, option: str, file_id: str | None) -> None:
        """A review option the mapping does not know: warned about once, then counted."""
        if option not in self.unmapped_options:
            log.warning(
                "review field %r: option %r maps to no PostFlow status (file %s); it decides "
                "nothing. Add it to review_options (POSTFLOW_REVIEW_OPTIONS) to map it",
                self._review.field,
                option,
                file_id or "-",
            )
        self.unmapped_options[option] = self.unmapped_options.get(option, 0) + 1

    def _defer(self, delivery: PendingDelivery, state: _Pass, now: datetime, reason: str) -> None:
        if delivery.file_id is not None:
            state.held.add(delivery.file_id)
        if delivery.attempts + 1 >= self._max_attempts:
            self._quarantine(delivery, state, f"enrichment kept failing: {reason}")
            return
        wait = timedelta(seconds=self._enrich_backoff(delivery.attempts + 1))
        state.deferred.append(Deferral(delivery.seq, now + wait, reason))
        state.settled.append(Settled(delivery.event_type, "deferred", delivery.received_at))
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
        if delivery.seq:
            state.settled.append(Settled(delivery.event_type, "quarantined", delivery.received_at))
        log.error(
            "delivery %s event=%s file=%s outcome=quarantined reason=%s",
            delivery.delivery_id,
            delivery.event_type,
            delivery.file_id or "-",
            reason,
        )
