"""Applying deliveries: the worker reads what is due, applies it with the rules, commits once.

One pass reads a batch of due deliveries in arrival order. Each is read from
its stored bytes, enriched through the file-details port when it carries IDs
only, and applied with ``apply_event`` on top of what the same pass already
decided for that file. The pass then commits the processed marks, the new
records, the notifications worth sending and the last event in one
transaction (``DeliveryQueue.commit``).

Nothing one delivery holds can stop the worker: a delivery that cannot be
read, applied or stored (any exception, whatever its cause) is quarantined
alone, with its reason. When a pass cannot be committed and the storage
itself is fine, its deliveries are committed one at a time, so only the one
whose changes cannot be stored is quarantined. A delivery whose enrichment
fails (Frame.io down, or any error of the lookup) waits with backoff, and so
do the later deliveries for the same file, so a file's events are never
applied out of order; after ``max_enrich_attempts`` it is quarantined too.
Only a storage outage fails a pass; the next one retries it.

The studio's review mapping is passed to the rules with every event; a
review-field value it does not know, or a status word nothing maps, decides
nothing, and is logged once and counted for the status page (``words.py``). The announce policy addresses
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
from postflow_webhooks.domain.errors import (
    DetailsUnavailableError,
    DomainError,
    StorageError,
    StorageUnavailableError,
)
from postflow_webhooks.domain.events import EventKind, WebhookEvent
from postflow_webhooks.domain.journal import (
    BatchResult,
    Deferral,
    LastEvent,
    PendingDelivery,
    Quarantine,
    WordKind,
    WordSeen,
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
from postflow_webhooks.service.words import WordsSeen, fields

log = logging.getLogger("postflow_webhooks.worker")

MAX_ENRICH_ATTEMPTS = 50
MAX_REASON_LENGTH = 1000


def storable(text: str) -> str:
    """``text`` as a reason that can always be stored: bad code points escaped, bounded."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")[:MAX_REASON_LENGTH]


def describe(exc: BaseException) -> str:
    """An exception as a storable reason: its type and message."""
    return storable(f"{type(exc).__name__}: {exc}")


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
    words: list[WordSeen] = attrs.Factory(list)


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
        self.words = WordsSeen(review.field)
        self._applied_last = False

    @property
    def unmapped_options(self) -> dict[str, int]:
        """Review options seen that the mapping does not know, with how often."""
        return self.words.review_options

    @property
    def unknown_statuses(self) -> dict[str, int]:
        """Status words seen that mean nothing, with how often."""
        return self.words.statuses

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
            # Stopping, only a pass that applied something calls for another: retrying
            # deferred deliveries (Frame.io down) must not hold the shutdown.
            if worked and not (self._control.stopping and not self._applied_last):
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
            prepared = _Pass(deferred=list(state.deferred), quarantined=list(state.quarantined))
            self._applied_last = bool(ready)
            await self._apply_all(ready, state)
            try:
                await self._commit(state, now, processed=True)
            except StorageUnavailableError:
                raise
            except Exception as exc:  # one delivery's changes, most likely: find it
                log.warning(
                    "a pass of %d deliveries could not be committed (%s); "
                    "committing them one at a time",
                    len(batch),
                    describe(exc),
                )
                await self._commit_one_by_one(prepared, ready, now)
            return True

    async def _commit_one_by_one(self, prepared: _Pass, ready: list[_Ready], now: datetime) -> None:
        """Commit a failed pass delivery by delivery; quarantine those that cannot be stored.

        ``prepared`` holds what reading and enriching decided (deferrals,
        quarantines). A storage outage still fails the pass
        (``StorageUnavailableError``).
        """
        if prepared.deferred or prepared.quarantined:
            await self._commit(prepared, now, processed=True)
        held: set[str] = set()
        for item in ready:
            files = {item.delivery.file_id, item.file_id} - {None}
            if files & held:
                continue  # stays pending: applied after the quarantined one, next pass
            single = _Pass()
            await self._apply_all([item], single)
            try:
                await self._commit(single, now, processed=True)
            except StorageUnavailableError:
                raise
            except Exception as exc:
                alone = _Pass()
                self._quarantine(
                    item.delivery, alone, f"its changes could not be stored: {describe(exc)}"
                )
                await self._commit(alone, now, processed=True)
                held.update(f for f in files if f is not None)

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
        unreadable: dict[str, str] = {}
        try:
            known = await self._records.find_many(file_ids) if file_ids else {}
        except StorageError:
            raise
        except Exception:  # a stored record that no longer reads: find which
            known, unreadable = await self._find_each(file_ids)
        for item in ready:
            if item.file_id in unreadable:
                reason = f"the stored record of {item.file_id} cannot be read: "
                self._quarantine(item.delivery, state, reason + unreadable[item.file_id])
                continue
            self._apply(item, known, state)

    async def _find_each(
        self, file_ids: list[str]
    ) -> tuple[dict[str, UploadRecord], dict[str, str]]:
        """Records one by one: those found, and why the others cannot be read."""
        known: dict[str, UploadRecord] = {}
        unreadable: dict[str, str] = {}
        for file_id in dict.fromkeys(file_ids):
            try:
                record = await self._records.find(file_id)
            except StorageError:
                raise
            except Exception as exc:
                unreadable[file_id] = describe(exc)
                continue
            if record is not None:
                known[file_id] = record
        return known, unreadable

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
                words=tuple(state.words),
            )
        )
        if processed:
            self.processed_total += len(state.processed)
            if self._report is not None and state.settled:
                self._report(state.settled, self._clock.now())
        self.unannounced_total += state.unannounced
        if log.isEnabledFor(logging.INFO):
            for applied in state.applied:
                log.info(
                    "delivery %s event=%s file=%s outcome=%s duration_ms=%.1f",
                    *applied,
                    extra=fields(*applied[:4], duration_ms=round(applied[4], 1)),
                )
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
            why = storable(str(exc)) if isinstance(exc, DomainError) else describe(exc)
            self._quarantine(delivery, state, f"unreadable delivery: {why}")
            return None
        try:
            enrichment = await self._enrich(event)
        except DetailsUnavailableError as exc:
            self._defer(delivery, state, now, storable(str(exc)))
            return None
        except Exception as exc:  # any other lookup failure waits and retries too
            self._defer(delivery, state, now, describe(exc))
            return None
        try:
            file_id = None if event.kind is EventKind.OTHER else target_file_id(event, enrichment)
        except Exception as exc:  # a bug in the rules must not block the queue
            self._quarantine(delivery, state, f"the rules failed: {describe(exc)}", exc)
            return None
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
            self._quarantine(delivery, state, f"the rules failed: {describe(exc)}", exc)
            return
        if decision.record is not None:
            state.records[decision.record.file_id] = decision.record
        self.words.note(decision, event.event_type)
        if decision.unmapped_option is not None:
            state.words.append(WordSeen(WordKind.REVIEW_OPTION, decision.unmapped_option))
        if decision.unknown_status is not None:
            state.words.append(WordSeen(WordKind.UNKNOWN_STATUS, decision.unknown_status))
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
            extra=fields(
                delivery.delivery_id,
                delivery.event_type,
                delivery.file_id,
                "deferred",
                reason=reason,
                retry_in_s=round(wait.total_seconds()),
            ),
        )

    def _quarantine(
        self,
        delivery: PendingDelivery,
        state: _Pass,
        reason: str,
        bug: BaseException | None = None,
    ) -> None:
        """Set ``delivery`` aside; ``bug`` (a failure of the rules) is logged with its traceback."""
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
            exc_info=bug,
            extra=fields(
                delivery.delivery_id,
                delivery.event_type,
                delivery.file_id,
                "quarantined",
                reason=reason,
            ),
        )
