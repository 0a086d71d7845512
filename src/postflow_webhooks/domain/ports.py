"""The ports: what the core and the worker need from the outside world.

Adapters fit them structurally (no inheritance); mypy proves the fit where the
composition root wires them. Each port has one role.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Protocol

import attrs

from postflow_webhooks.domain.journal import (
    BatchResult,
    DeadLetter,
    DestinationState,
    IncomingDelivery,
    JournalStats,
    PendingDelivery,
    QuarantinedDelivery,
)
from postflow_webhooks.domain.records import CommentInfo, FileInfo, Notification, UploadRecord
from postflow_webhooks.domain.statuses import PostflowStatus


class Clock(Protocol):
    """The time, injected so that tests control it."""

    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


class UploadStore(Protocol):
    """PostFlow's upload tracker: where tracked files live."""

    async def find(self, file_id: str, name: str | None = None) -> UploadRecord | None:
        """The record of a Frame.io file id, else one named ``name`` not yet linked to any file."""
        ...

    async def find_many(self, keys: Sequence[tuple[str, str | None]]) -> dict[str, UploadRecord]:
        """``find`` for many (file id, name) pairs at once; found records by file id."""
        ...

    async def save(self, records: Sequence[UploadRecord]) -> None:
        """Create or replace these records, all or nothing."""
        ...

    async def list_records(
        self, *, status: PostflowStatus | None = None, offset: int = 0, limit: int = 50
    ) -> list[UploadRecord]:
        """Tracked files, most recently changed first, optionally of one status."""
        ...

    async def count(self, *, status: PostflowStatus | None = None) -> int:
        """How many tracked files, optionally of one status."""
        ...

    async def close(self) -> None:
        """Release files and connections."""
        ...


class DeliveryInbox(Protocol):
    """Where the receiver commits deliveries before it answers."""

    async def append(self, delivery: IncomingDelivery) -> None:
        """Commit the delivery durably; return only once it is on disk."""
        ...

    async def reject(self, reason: str) -> None:
        """Count a refused request by reason (bad signature, too large, ...)."""
        ...


class DeliveryQueue(Protocol):
    """The worker's side of the journal."""

    @property
    def commits_records(self) -> bool:
        """True when ``commit`` also writes the records into the upload store."""
        ...

    async def pending(self, limit: int, now: datetime) -> list[PendingDelivery]:
        """Unprocessed deliveries in arrival order, deferred ones included."""
        ...

    async def commit(self, result: BatchResult) -> None:
        """Commit one pass: processed marks, records, notifications, stats."""
        ...

    async def tracker_writes(self) -> list[UploadRecord]:
        """Records committed here but not yet confirmed written to the store."""
        ...

    async def clear_tracker_writes(self, records: Sequence[UploadRecord]) -> None:
        """Forget pending tracker writes that the store has now taken."""
        ...

    async def deferred(self, limit: int = 100) -> list[PendingDelivery]:
        """Deliveries waiting to be retried (enrichment failed), oldest first."""
        ...

    async def quarantined(self, limit: int = 100) -> list[QuarantinedDelivery]:
        """Deliveries set aside, oldest first."""
        ...

    async def requeue(self, seqs: Sequence[int]) -> int:
        """Put quarantined deliveries back in the queue; how many moved."""
        ...

    async def prune(self, before: datetime) -> int:
        """Delete processed deliveries and settled notifications older than ``before``."""
        ...

    async def stats(self) -> JournalStats:
        """The counters ``/webhook-status`` shows."""
        ...


class NotificationOutbox(Protocol):
    """Due notifications, committed with the change that caused them."""

    async def due(self, limit: int) -> list[Notification]:
        """Pending notifications in the order they were committed."""
        ...

    async def mark_sent(self, notification_id: int, at: datetime) -> None:
        """The destination accepted it."""
        ...

    async def mark_skipped(self, skipped: Sequence[tuple[int, str]], at: datetime) -> None:
        """Settled without sending (no destination, filtered out): (id, reason) pairs, one write."""
        ...

    async def mark_dead(self, notification_id: int, reason: str, at: datetime) -> None:
        """The destination refused it for good; keep it for replay."""
        ...

    async def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        """Refused notifications, oldest first."""
        ...

    async def requeue_dead(self, notification_ids: Sequence[int]) -> int:
        """Put dead letters back to pending; how many moved."""
        ...

    async def destination(self, key: str) -> DestinationState:
        """The saved state of a destination (a hash of its URL, never the URL)."""
        ...

    async def set_destination(self, state: DestinationState) -> None:
        """Save a destination's state."""
        ...


class Notifier(Protocol):
    """Announces one notification somewhere (Discord)."""

    async def send(self, notification: Notification) -> None:
        """Deliver it or raise a ``NotifierError`` saying why not."""
        ...


class FileDetails(Protocol):
    """Frame.io's API, for what IDs-only deliveries do not say."""

    async def file(
        self, file_id: str, account_id: str | None = None, *, fresh: bool = False
    ) -> FileInfo | None:
        """The file's name, status, links and Status field; ``None`` if it is gone.

        ``fresh`` asks for Frame.io's answer now, never a cached one.
        """
        ...

    async def comment(self, comment_id: str, account_id: str | None = None) -> CommentInfo | None:
        """A comment's text, author and file; ``None`` if it is gone."""
        ...


@attrs.frozen
class TunnelInfo:
    """What the tunnel is doing, for ``/health`` and ``/webhook-status``."""

    mode: str = "off"
    state: str = "off"
    public_url: str | None = None
    ready: bool = False
    restarts: int = 0
    last_error: str | None = None
    since: datetime | None = None


UrlListener = Callable[[str], Awaitable[None]]


class Tunnel(Protocol):
    """A public endpoint forwarding to the receiver's port."""

    async def start(self) -> None:
        """Start and supervise it; return once ready or raise ``TunnelError``."""
        ...

    async def stop(self) -> None:
        """Stop it and leave no process behind."""
        ...

    def info(self) -> TunnelInfo:
        """Its state now."""
        ...

    def subscribe(self, listener: UrlListener) -> None:
        """Call ``listener`` with every new public URL."""
        ...
