"""The ports: what the use cases need from the outside world, one role each.

Adapters fit them structurally (no inheritance); mypy proves the fit where the
composition root wires them. One adapter may fit several ports (the SQLite
database fits most of them), and a use case asks only for the roles it uses.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Protocol

import attrs

from postflow_webhooks.domain.alerts import Incident
from postflow_webhooks.domain.events import WebhookEvent
from postflow_webhooks.domain.journal import (
    BatchResult,
    CommitFailure,
    DeadLetter,
    DestinationState,
    IncomingDelivery,
    JournalStats,
    PendingDelivery,
    QuarantinedDelivery,
)
from postflow_webhooks.domain.records import CommentInfo, FileInfo, Notification, UploadRecord
from postflow_webhooks.domain.statuses import PostflowStatus

Sleep = Callable[[float], Awaitable[None]]
"""Waits some seconds (``asyncio.sleep``; tests inject their own)."""

Backoff = Callable[[int], float]
"""Seconds to wait after this many failures in a row (1, 2, ...); never overflows."""

EventReader = Callable[[bytes], WebhookEvent]
"""Reads a delivery's stored bytes into its event; raises ``PayloadError`` or ``NotJsonError``."""


class Clock(Protocol):
    """The time, injected so that tests control it."""

    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


class DeliveryInbox(Protocol):
    """Where the receiver commits deliveries before it answers."""

    async def append(self, delivery: IncomingDelivery) -> str | None:
        """Commit the delivery durably; return only once it is on disk.

        Returns ``None``, or for a replay of a signed delivery already accepted
        (same signature and timestamp) the first one's delivery id, and then
        nothing is stored or counted as an event.
        """
        ...

    async def reject(self, reason: str) -> None:
        """Count a refused request by reason (bad signature, too large, ...)."""
        ...


class CommitHealth(Protocol):
    """Whether the database takes commits: the outcome of the last one tried."""

    def commit_failure(self) -> CommitFailure | None:
        """Why the last commit failed (disk full, locked, ...); ``None`` once one succeeds."""
        ...


class DeliveryQueue(Protocol):
    """The worker's side of the journal: what is due, and one commit per pass."""

    async def pending(self, limit: int, now: datetime) -> list[PendingDelivery]:
        """Due deliveries in arrival order; a file behind a deferred delivery waits."""
        ...

    async def next_due(self) -> datetime | None:
        """When the earliest deferred delivery becomes due; ``None`` when none waits."""
        ...

    async def commit(self, result: BatchResult) -> None:
        """Commit one pass: marks, records, notifications and the last event, together."""
        ...


class DeliveryDesk(Protocol):
    """Deliveries that need a person: deferred ones and the quarantine."""

    async def deferred(self, limit: int = 100) -> list[PendingDelivery]:
        """Deliveries waiting to be retried (enrichment failed), oldest first."""
        ...

    async def quarantined(self, limit: int = 100) -> list[QuarantinedDelivery]:
        """Deliveries set aside, oldest first."""
        ...

    async def requeue(self, seqs: Sequence[int]) -> int:
        """Put quarantined deliveries back in the queue; how many moved."""
        ...

    async def waiting(self, file_id: str) -> int:
        """How many of this file's deliveries are not applied yet (pending or deferred)."""
        ...


class Retention(Protocol):
    """Forgetting what is settled and old."""

    async def prune(self, before: datetime) -> int:
        """Delete processed deliveries and settled notifications older than ``before``."""
        ...


class Counters(Protocol):
    """The figures ``/webhook-status`` shows; they survive restarts."""

    async def stats(self) -> JournalStats:
        """Events, rejections, backlog, quarantine and notification counts."""
        ...


class RecordStore(Protocol):
    """The tracked files, as the worker last committed them."""

    async def find(self, file_id: str) -> UploadRecord | None:
        """The record of a Frame.io file id."""
        ...

    async def find_many(self, file_ids: Sequence[str]) -> dict[str, UploadRecord]:
        """The records of these file ids that exist, by file id."""
        ...

    async def list_records(
        self, *, status: PostflowStatus | None = None, offset: int = 0, limit: int = 50
    ) -> list[UploadRecord]:
        """Tracked files, most recently changed first, optionally of one status."""
        ...

    async def count(self, *, status: PostflowStatus | None = None) -> int:
        """How many tracked files, optionally of one status."""
        ...

    async def find_by_comment(self, comment_key: str) -> UploadRecord | None:
        """The record holding a comment (``id:<comment id>``), live or deleted."""
        ...


class TrackerFeed(Protocol):
    """Records changed since a mark, for keeping PostFlow's tracker in step."""

    async def changed_since(self, mark: int, limit: int) -> tuple[list[UploadRecord], int]:
        """Up to ``limit`` records changed after ``mark``, oldest change first, and the new mark."""
        ...

    async def tracker_mark(self) -> int:
        """How far the tracker has been brought up to date."""
        ...

    async def set_tracker_mark(self, mark: int) -> None:
        """The tracker now holds every change up to ``mark``."""
        ...

    async def adopt(self, records: Sequence[UploadRecord]) -> int:
        """Take in records the tracker holds and the database does not; how many were new."""
        ...


class Tracker(Protocol):
    """PostFlow's upload tracker (its JSON file, or its live object), kept in step."""

    async def entries(self) -> list[UploadRecord]:
        """The records of the tracker's entries that are linked to Frame.io files."""
        ...

    async def write(self, records: Sequence[UploadRecord]) -> None:
        """Bring these files' entries up to date; idempotent, all or nothing per call."""
        ...


class NotificationOutbox(Protocol):
    """Due notifications, committed with the change that caused them."""

    async def due(
        self, limit: int, destination: str | None = None, *, exclude: Sequence[str] = ()
    ) -> list[Notification]:
        """Pending notifications in the order they were committed.

        Only those for ``destination`` when one is given; never those for a
        destination in ``exclude``.
        """
        ...

    async def mark_sent(self, notification_id: int, at: datetime) -> None:
        """The destination accepted it."""
        ...

    async def mark_dead(self, notification_id: int, reason: str, at: datetime) -> None:
        """The destination refused it for good; keep it for replay."""
        ...


class DeadLetters(Protocol):
    """Notifications the destination refused, kept for replay."""

    async def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        """Refused notifications, oldest first."""
        ...

    async def requeue_dead(self, notification_ids: Sequence[int]) -> int:
        """Put dead letters back to pending; how many moved."""
        ...


class IncidentLog(Protocol):
    """Open incidents about the receiver itself, kept across restarts, and their alerts."""

    async def open_incidents(self) -> list[Incident]:
        """The incidents open now, oldest first."""
        ...

    async def record(
        self,
        opened: Sequence[Incident],
        closed: Sequence[str],
        notifications: Sequence[Notification],
    ) -> None:
        """Open and close incidents (by reason) and queue their alerts, in one transaction."""
        ...


class DestinationStates(Protocol):
    """Whether each notification destination works, kept across restarts."""

    async def destination(self, key: str) -> DestinationState:
        """The saved state of a destination (a hash of its URL, never the URL)."""
        ...

    async def set_destination(self, state: DestinationState) -> None:
        """Save a destination's state."""
        ...


class Notifier(Protocol):
    """Announces one notification somewhere (Discord)."""

    @property
    def key(self) -> str:
        """A stable key for the destination's saved state (never the secret URL)."""
        ...

    @property
    def label(self) -> str:
        """How the destination is shown to people (redacted)."""
        ...

    def ready_in(self) -> float:
        """Seconds the destination asks us to wait before the next send (0: now)."""
        ...

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


class NameDirectory(Protocol):
    """Frame.io's names for the ids a delivery carries (projects, users); best effort."""

    async def project_name(self, project_id: str, account_id: str | None = None) -> str | None:
        """The project's name; ``None`` if it is gone or hidden from us."""
        ...

    async def user_name(self, user_id: str, account_id: str | None = None) -> str | None:
        """The user's name; ``None`` when Frame.io will not say (never raises)."""
        ...


@attrs.frozen
class RegisteredWebhook:
    """Our webhook as Frame.io holds it, and its signing secret when it was just created."""

    webhook_id: str
    url: str
    secret: str | None = attrs.field(default=None, repr=False)


class WebhookRegistry(Protocol):
    """Frame.io's webhooks: ours, pointed at a URL."""

    @property
    def name(self) -> str:
        """The name our webhook goes by."""
        ...

    async def point_at(self, url: str, *, create: bool) -> RegisteredWebhook | None:
        """Point our webhook at ``url`` (creating it when ``create``); ``None`` if none exists."""
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


@attrs.frozen
class Role:
    """A background job one receiver at a time runs: started on ``gain``, stopped on ``lose``."""

    name: str
    gain: Callable[[], Awaitable[None]]
    lose: Callable[[], Awaitable[None]]


class RoleLeases(Protocol):
    """Which receiver runs each role; with one receiver, this one runs them all."""

    async def start(self, roles: Sequence[Role]) -> None:
        """Take what roles can be taken now (gaining them in order); keep trying for the rest."""
        ...

    async def stop(self) -> None:
        """Lose every held role, in the order given to ``start``, and let the others have them."""
        ...

    def holds(self, name: str) -> bool:
        """True while this receiver holds the role."""
        ...

    def state(self) -> dict[str, str]:
        """Each role and ``held`` or ``standby``, for ``/health``."""
        ...
