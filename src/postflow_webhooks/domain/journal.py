"""Values that travel between the receiver, the worker and the durable journal."""

from __future__ import annotations

import enum
from datetime import datetime

import attrs

from postflow_webhooks.domain.records import Notification, UploadRecord


@attrs.frozen
class IncomingDelivery:
    """A verified, parsed delivery about to be committed, raw bytes included.

    A signed delivery carries its signature's digest and timestamp: a pair
    already accepted within the signature window is a replay, not journaled.
    """

    delivery_id: str
    received_at: datetime
    body: bytes = attrs.field(repr=False)
    event_type: str
    file_id: str | None = None
    signed: bool = False
    signature: bytes | None = attrs.field(default=None, repr=False)
    timestamp: int | None = None


@attrs.frozen
class PendingDelivery:
    """A committed delivery the worker has not finished with yet."""

    seq: int
    delivery_id: str
    received_at: datetime
    body: bytes = attrs.field(repr=False)
    event_type: str
    file_id: str | None = None
    attempts: int = 0
    not_before: datetime | None = None
    last_error: str | None = None


@attrs.frozen
class Deferral:
    """A delivery put back for later (the API could not enrich it yet)."""

    seq: int
    not_before: datetime
    reason: str


@attrs.frozen
class Quarantine:
    """A delivery the core cannot process, set aside with its reason."""

    seq: int
    reason: str


class WordKind(enum.Enum):
    """Which kind of word decided nothing; the value is its counter's kind in the store."""

    REVIEW_OPTION = "review_option"
    UNKNOWN_STATUS = "unknown_status"


MAX_WORD_LENGTH = 128
"""A counted word is cut to this many characters (the store keeps one counter per word)."""


def _cut(word: str) -> str:
    return word[:MAX_WORD_LENGTH]


@attrs.frozen
class WordSeen:
    """A review option no mapping knows, or a status word no vocabulary knows."""

    kind: WordKind
    word: str = attrs.field(converter=_cut)


@attrs.frozen
class LastEvent:
    """The last event the worker applied, as ``/webhook-status`` shows it."""

    delivery_id: str
    event_type: str
    file_id: str | None
    outcome: str
    at: datetime


@attrs.frozen
class BatchResult:
    """Everything one worker pass commits in a single transaction."""

    at: datetime | None = None
    processed: tuple[int, ...] = ()
    deferred: tuple[Deferral, ...] = ()
    quarantined: tuple[Quarantine, ...] = ()
    records: tuple[UploadRecord, ...] = ()
    notifications: tuple[Notification, ...] = ()
    last_event: LastEvent | None = None
    words: tuple[WordSeen, ...] = ()


@attrs.frozen
class QuarantinedDelivery:
    """A delivery in quarantine, for listing and replay."""

    seq: int
    delivery_id: str
    received_at: datetime
    event_type: str
    reason: str
    body: bytes = attrs.field(repr=False)


class NotificationState(enum.Enum):
    """Where a notification is in its life."""

    PENDING = "pending"
    SENT = "sent"
    SKIPPED = "skipped"
    DEAD = "dead"


@attrs.frozen
class DeadLetter:
    """A notification Discord refused for good, with its answer."""

    notification: Notification
    reason: str
    at: datetime


@attrs.frozen
class DestinationState:
    """Whether a notification destination works; ``broken`` stops all sending to it."""

    key: str
    broken: bool = False
    reason: str | None = None
    since: datetime | None = None


@attrs.frozen
class CommitFailure:
    """Why the database took no commit the last time one was tried, and since when.

    ``reason`` is one of ``disk_full``, ``read_only``, ``io_error``, ``locked``,
    ``damaged``, ``cannot_open``, ``out_of_memory`` or ``unavailable``.
    """

    reason: str
    detail: str
    since: datetime


@attrs.frozen
class JournalStats:
    """Counters that survive restarts, as ``/webhook-status`` shows them."""

    total_events: int = 0
    events_by_type: dict[str, int] = attrs.field(factory=dict)
    rejections: dict[str, int] = attrs.field(factory=dict)
    duplicates: int = 0
    backlog: int = 0
    quarantined: int = 0
    notifications_pending: int = 0
    notifications_dead: int = 0
    last_event: LastEvent | None = None
    unmapped_review_options: dict[str, int] = attrs.field(factory=dict)
    unknown_statuses: dict[str, int] = attrs.field(factory=dict)


@attrs.frozen
class StoreReading:
    """What the status page, ``/health`` and ``/metrics`` read from the database in one go."""

    oldest_pending_at: datetime | None = None
    deferred: int = 0
    oldest_deferred_at: datetime | None = None
    deferred_reason: str | None = None
    files_by_status: dict[str, int] = attrs.field(factory=dict)
    revision: int = 0
    notifications_sent_total: int = 0
    notifications_dead_total: int = 0
