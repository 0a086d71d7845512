"""In-memory fakes of the ports, for unit tests.

``MemoryDatabase`` stands for the SQLite database (journal, records, outbox,
destinations in one place, a pass committed at once); ``MemoryTracker`` for
PostFlow's tracker. They keep state and pass the same contract suites as the
real adapters, so a test that passes against them says something true about
the real ones.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta

import attrs

from postflow_webhooks.domain.alerts import Incident
from postflow_webhooks.domain.endpoint import MAX_EVENT_TYPES_SHOWN, MAX_SKEW_SECONDS
from postflow_webhooks.domain.journal import (
    BatchResult,
    DeadLetter,
    DestinationState,
    IncomingDelivery,
    JournalStats,
    LastEvent,
    NotificationState,
    PendingDelivery,
    QuarantinedDelivery,
    WordKind,
)
from postflow_webhooks.domain.records import Notification, UploadRecord, holds_comment
from postflow_webhooks.domain.statuses import PostflowStatus


@attrs.define
class _Row:
    delivery: PendingDelivery
    state: str = "pending"
    processed_at: datetime | None = None
    reason: str | None = None


@attrs.define
class _Note:
    notification: Notification
    state: NotificationState = NotificationState.PENDING
    reason: str | None = None
    settled_at: datetime | None = None


def _most_seen(counts: Counter[str]) -> dict[str, int]:
    """The most frequent keys, as many as the stores show, in the same order as theirs."""
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return dict(ranked[:MAX_EVENT_TYPES_SHOWN])


def _bounded(by_type: Counter[str]) -> dict[str, int]:
    """The most frequent event types by name, the rest under ``other`` (as SQLite does)."""
    shown = _most_seen(by_type)
    if len(by_type) > MAX_EVENT_TYPES_SHOWN:
        rest = sum(by_type.values()) - sum(shown.values())
        shown["other"] = shown.get("other", 0) + rest
    return shown


class MemoryDatabase:
    """Deliveries, records, notifications and destinations in lists and dicts."""

    def __init__(self) -> None:
        self._rows: list[_Row] = []
        self._notes: list[_Note] = []
        self._last_seq = 0
        self._last_note_id = 0
        self.records: dict[str, UploadRecord] = {}
        self._revisions: dict[str, int] = {}
        self._revision = 0
        self._tracker_mark = 0
        self._destinations: dict[str, DestinationState] = {}
        self._total = 0
        self._by_type: Counter[str] = Counter()
        self._rejections: Counter[str] = Counter()
        self._words: dict[WordKind, Counter[str]] = {kind: Counter() for kind in WordKind}
        self._last_event: LastEvent | None = None
        self._incidents: list[Incident] = []
        self._signatures: dict[tuple[bytes, int], str] = {}
        self._duplicates = 0

    # -- DeliveryInbox ---------------------------------------------------------

    async def append(self, delivery: IncomingDelivery) -> str | None:
        """Keep the delivery and count it; for a replayed signature, the first one's id."""
        if delivery.signature is not None:
            horizon = int(delivery.received_at.timestamp()) - MAX_SKEW_SECONDS - 1
            self._signatures = {k: v for k, v in self._signatures.items() if k[1] >= horizon}
            key = (delivery.signature, delivery.timestamp or 0)
            if key in self._signatures:
                self._duplicates += 1
                return self._signatures[key]
            self._signatures[key] = delivery.delivery_id
        self._last_seq += 1
        pending = PendingDelivery(
            seq=self._last_seq,
            delivery_id=delivery.delivery_id,
            received_at=delivery.received_at,
            body=delivery.body,
            event_type=delivery.event_type,
            file_id=delivery.file_id,
        )
        self._rows.append(_Row(pending))
        self._total += 1
        self._by_type[delivery.event_type] += 1
        return None

    async def reject(self, reason: str) -> None:
        """Count a refused request."""
        self._rejections[reason] += 1

    # -- DeliveryQueue ---------------------------------------------------------

    async def pending(self, limit: int, now: datetime) -> list[PendingDelivery]:
        """Due deliveries in order, skipping files held back by an earlier deferred one."""
        held: set[str] = set()
        due: list[PendingDelivery] = []
        for row in self._rows:
            if row.state != "pending":
                continue
            delivery = row.delivery
            waiting = delivery.not_before is not None and delivery.not_before > now
            if waiting or (delivery.file_id is not None and delivery.file_id in held):
                if waiting and delivery.file_id is not None:
                    held.add(delivery.file_id)
                continue
            due.append(delivery)
            if len(due) >= limit:
                break
        return due

    async def next_due(self) -> datetime | None:
        """When the earliest deferred delivery becomes due."""
        times = [
            r.delivery.not_before
            for r in self._rows
            if r.state == "pending" and r.delivery.not_before is not None
        ]
        return min(times) if times else None

    async def commit(self, result: BatchResult) -> None:
        """Apply one worker pass."""
        by_seq = {row.delivery.seq: row for row in self._rows}
        for seq in result.processed:
            by_seq[seq].state, by_seq[seq].processed_at = "processed", result.at
        for deferral in result.deferred:
            row = by_seq[deferral.seq]
            row.delivery = attrs.evolve(
                row.delivery,
                attempts=row.delivery.attempts + 1,
                not_before=deferral.not_before,
                last_error=deferral.reason,
            )
        for quarantine in result.quarantined:
            if quarantine.seq in by_seq:
                by_seq[quarantine.seq].state = "quarantined"
                by_seq[quarantine.seq].reason = quarantine.reason
        for seen in result.words:
            self._words[seen.kind][seen.word] += 1
        for record in result.records:
            self._revision += 1
            self.records[record.file_id] = record
            self._revisions[record.file_id] = self._revision
        for notification in result.notifications:
            self._last_note_id += 1
            numbered = attrs.evolve(notification, id=self._last_note_id)
            self._notes.append(_Note(numbered))
        if result.last_event is not None:
            self._last_event = result.last_event

    # -- DeliveryDesk ----------------------------------------------------------

    async def deferred(self, limit: int = 100) -> list[PendingDelivery]:
        """Pending deliveries that wait for a retry, oldest first."""
        waiting = [
            r.delivery
            for r in self._rows
            if r.state == "pending" and r.delivery.not_before is not None
        ]
        return waiting[:limit]

    async def waiting(self, file_id: str) -> int:
        """This file's deliveries not applied yet."""
        return sum(1 for r in self._rows if r.state == "pending" and r.delivery.file_id == file_id)

    async def quarantined(self, limit: int = 100) -> list[QuarantinedDelivery]:
        """Quarantined deliveries, oldest first."""
        return [
            QuarantinedDelivery(
                seq=row.delivery.seq,
                delivery_id=row.delivery.delivery_id,
                received_at=row.delivery.received_at,
                event_type=row.delivery.event_type,
                reason=row.reason or "",
                body=row.delivery.body,
            )
            for row in self._rows
            if row.state == "quarantined"
        ][:limit]

    async def requeue(self, seqs: Sequence[int]) -> int:
        """Move quarantined deliveries back to pending."""
        moved = 0
        for row in self._rows:
            if row.delivery.seq in seqs and row.state == "quarantined":
                row.state, row.reason = "pending", None
                row.delivery = attrs.evolve(
                    row.delivery, attempts=0, not_before=None, last_error=None
                )
                moved += 1
        return moved

    # -- Retention and Counters ------------------------------------------------

    async def prune(self, before: datetime) -> int:
        """Drop processed deliveries and settled notifications older than ``before``."""
        settled = (NotificationState.SENT, NotificationState.SKIPPED)
        kept_rows = [
            r
            for r in self._rows
            if not (r.state == "processed" and r.processed_at and r.processed_at < before)
        ]
        kept_notes = [
            n
            for n in self._notes
            if not (n.state in settled and n.settled_at and n.settled_at < before)
        ]
        dropped = len(self._rows) - len(kept_rows) + len(self._notes) - len(kept_notes)
        self._rows, self._notes = kept_rows, kept_notes
        return dropped

    async def stats(self) -> JournalStats:
        """Counters as ``/webhook-status`` shows them."""
        return JournalStats(
            total_events=self._total,
            events_by_type=_bounded(self._by_type),
            rejections=dict(self._rejections),
            duplicates=self._duplicates,
            backlog=sum(1 for r in self._rows if r.state == "pending"),
            quarantined=sum(1 for r in self._rows if r.state == "quarantined"),
            notifications_pending=self._count(NotificationState.PENDING),
            notifications_dead=self._count(NotificationState.DEAD),
            last_event=self._last_event,
            unmapped_review_options=_most_seen(self._words[WordKind.REVIEW_OPTION]),
            unknown_statuses=_most_seen(self._words[WordKind.UNKNOWN_STATUS]),
        )

    def _count(self, state: NotificationState) -> int:
        return sum(1 for n in self._notes if n.state is state)

    # -- RecordStore and TrackerFeed -------------------------------------------

    async def find(self, file_id: str) -> UploadRecord | None:
        """The record for ``file_id``."""
        return self.records.get(file_id)

    async def find_many(self, file_ids: Sequence[str]) -> dict[str, UploadRecord]:
        """The records of these file ids."""
        return {fid: self.records[fid] for fid in file_ids if fid in self.records}

    async def list_records(
        self, *, status: PostflowStatus | None = None, offset: int = 0, limit: int = 50
    ) -> list[UploadRecord]:
        """Records, most recently changed first."""
        found = [r for r in self.records.values() if status is None or r.status is status]
        found.sort(key=lambda r: (r.last_change, r.file_id), reverse=True)
        return found[offset : offset + limit]

    async def count(self, *, status: PostflowStatus | None = None) -> int:
        """How many records, optionally of one status."""
        return sum(1 for r in self.records.values() if status is None or r.status is status)

    async def find_by_comment(self, comment_key: str) -> UploadRecord | None:
        """The record holding a comment, live or deleted (most recently changed first)."""
        found = [r for r in self.records.values() if holds_comment(r, comment_key)]
        found.sort(key=lambda r: r.last_change, reverse=True)
        return found[0] if found else None

    async def adopt(self, records: Sequence[UploadRecord]) -> int:
        """Add records not held yet."""
        fresh = [r for r in records if r.file_id not in self.records]
        for record in fresh:
            self.records[record.file_id] = record
            self._revisions[record.file_id] = 0
        return len(fresh)

    async def changed_since(self, mark: int, limit: int) -> tuple[list[UploadRecord], int]:
        """Records changed after ``mark``, oldest change first, and the revision reached."""
        changed = sorted((rev, fid) for fid, rev in self._revisions.items() if rev > mark)
        chosen = changed[:limit]
        reached = chosen[-1][0] if chosen else mark
        return [self.records[fid] for _, fid in chosen], reached

    async def tracker_mark(self) -> int:
        """How far the tracker is up to date."""
        return self._tracker_mark

    async def set_tracker_mark(self, mark: int) -> None:
        """Move the tracker's mark."""
        self._tracker_mark = mark

    # -- NotificationOutbox, DeadLetters, DestinationStates --------------------

    async def due(
        self, limit: int, destination: str | None = None, *, exclude: Sequence[str] = ()
    ) -> list[Notification]:
        """Pending notifications in commit order (of one destination, or none of ``exclude``)."""
        pending = [
            n.notification
            for n in self._notes
            if n.state is NotificationState.PENDING
            and (destination is None or n.notification.destination == destination)
            and n.notification.destination not in exclude
        ]
        return pending[:limit]

    async def mark_sent(self, notification_id: int, at: datetime) -> None:
        """Settle as sent."""
        self._settle(notification_id, NotificationState.SENT, None, at)

    async def mark_dead(self, notification_id: int, reason: str, at: datetime) -> None:
        """Settle as dead, kept for replay."""
        self._settle(notification_id, NotificationState.DEAD, reason, at)

    def _settle(
        self, notification_id: int, state: NotificationState, reason: str | None, at: datetime
    ) -> None:
        for note in self._notes:
            if note.notification.id == notification_id:
                note.state, note.reason, note.settled_at = state, reason, at

    async def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        """Dead notifications, oldest first."""
        return [
            DeadLetter(n.notification, n.reason or "", n.settled_at or n.notification.at)
            for n in self._notes
            if n.state is NotificationState.DEAD
        ][:limit]

    async def requeue_dead(self, notification_ids: Sequence[int]) -> int:
        """Dead notifications back to pending."""
        moved = 0
        for note in self._notes:
            if note.notification.id in notification_ids and note.state is NotificationState.DEAD:
                note.state, note.reason, note.settled_at = NotificationState.PENDING, None, None
                moved += 1
        return moved

    async def destination(self, key: str) -> DestinationState:
        """A destination's saved state (working when never seen)."""
        return self._destinations.get(key, DestinationState(key=key))

    async def set_destination(self, state: DestinationState) -> None:
        """Save a destination's state."""
        self._destinations[state.key] = state

    # -- IncidentLog -----------------------------------------------------------

    async def open_incidents(self) -> list[Incident]:
        """The incidents open now, oldest first."""
        return list(self._incidents)

    async def record(
        self,
        opened: Sequence[Incident],
        closed: Sequence[str],
        notifications: Sequence[Notification],
    ) -> None:
        """Open and close incidents and queue their alerts, all at once."""
        kept = [i for i in self._incidents if i.reason not in set(closed)]
        known = {i.reason for i in kept}
        self._incidents = kept + [i for i in opened if i.reason not in known]
        await self.commit(BatchResult(notifications=tuple(notifications)))


class MemoryTracker:
    """PostFlow's tracker as a dict of records; ``fail_next`` makes writes fail for a while."""

    def __init__(self) -> None:
        self.records: dict[str, UploadRecord] = {}
        self.writes = 0
        self.fail_next = 0

    async def entries(self) -> list[UploadRecord]:
        """Every record held."""
        return list(self.records.values())

    async def write(self, records: Sequence[UploadRecord]) -> None:
        """Keep these records (or fail, while ``fail_next`` counts down)."""
        if self.fail_next:
            self.fail_next -= 1
            raise OSError("the tracker is unavailable (fake)")
        self.writes += 1
        for record in records:
            self.records[record.file_id] = record


class FixedClock:
    """A clock that moves only when told to."""

    def __init__(self, now: datetime) -> None:
        self._now = now

    def now(self) -> datetime:
        """The current (fake) time."""
        return self._now

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self._now = self._now + timedelta(seconds=seconds)
