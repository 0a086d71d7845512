"""What the core knows about a tracked file, and what it asks to be announced."""

from __future__ import annotations

import enum
from datetime import datetime

import attrs

from postflow_webhooks.domain.alerts import Alert
from postflow_webhooks.domain.events import Links
from postflow_webhooks.domain.statuses import PostflowStatus, Processing, Review, displayed_status

HISTORY_LIMIT = 200
REMOVED_COMMENTS_LIMIT = 200
COMMENT_TEXT_LIMIT = 2000
DEFAULT_DESTINATION = "default"


@attrs.frozen
class FileInfo:
    """A file as Frame.io's API describes it (the file-details port answers this)."""

    file_id: str
    name: str | None = None
    status: str | None = None
    review_status: str | None = None
    view_url: str | None = None
    links: Links = ()
    version: int | None = None
    project_id: str | None = None


@attrs.frozen
class CommentInfo:
    """A comment as Frame.io's API describes it (``parent_id`` for a reply)."""

    comment_id: str
    file_id: str | None = None
    text: str | None = None
    author: str | None = None
    parent_id: str | None = None
    completed: bool | None = None


@attrs.frozen
class Enrichment:
    """What the API added to a delivery; empty when nothing was looked up.

    ``project_name`` and ``actor_name`` name the delivery's project and user
    (the one who acted), when Frame.io could say.
    """

    file: FileInfo | None = None
    comment: CommentInfo | None = None
    project_name: str | None = None
    actor_name: str | None = None


@attrs.frozen
class LastComment:
    """The latest comment seen on a file."""

    text: str | None
    author: str | None
    at: datetime


@attrs.frozen
class CommentEntry:
    """One comment on a file, as far as we know it.

    ``key`` is ``id:<comment id>`` (or ``text:<author>:<text>`` when a payload
    gives no id). A reply names its thread's key; a thread we only know
    through a reply has no ``at`` (we never saw it created).
    """

    key: str
    thread: str | None = None
    completed: bool = False
    text: str | None = None
    author: str | None = None
    at: datetime | None = None

    @property
    def is_thread(self) -> bool:
        """True for a thread's first comment, False for a reply."""
        return self.thread is None


@attrs.frozen
class HistoryEntry:
    """One change of a file's displayed status and the event that caused it."""

    at: datetime
    event_type: str
    delivery_id: str
    old_status: PostflowStatus | None
    new_status: PostflowStatus | None
    version: int


@attrs.frozen
class UploadRecord:
    """One tracked file: both state axes, its version, links, comments and history."""

    file_id: str
    name: str | None = None
    processing: Processing = Processing.NONE
    review: Review = Review.NONE
    version: int = 1
    version_fresh: bool = False
    links: Links = ()
    project_id: str | None = None
    project_name: str | None = None
    comment_count: int = 0
    open_comments: int = 0
    comments: tuple[CommentEntry, ...] = ()
    removed_comments: tuple[str, ...] = ()
    last_comment: LastComment | None = None
    deleted: bool = False
    history: tuple[HistoryEntry, ...] = ()
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def status(self) -> PostflowStatus | None:
        """The status PostFlow displays for this file."""
        return displayed_status(self.processing, self.review)

    @property
    def view_url(self) -> str | None:
        """The Frame.io link to the file, when known."""
        return dict(self.links).get("view_url")

    @property
    def last_change(self) -> float:
        """When the record last changed, as Unix seconds (0 when never stamped)."""
        stamp = self.updated_at or self.created_at
        return stamp.timestamp() if stamp else 0.0

    @property
    def settled(self) -> bool:
        """True when nothing more is expected: deleted, or approved or rejected."""
        return self.deleted or self.review in (Review.APPROVED, Review.REJECTED)

    @classmethod
    def new(cls, file_id: str, at: datetime, name: str | None = None) -> UploadRecord:
        """A file seen for the first time."""
        return cls(file_id=file_id, name=name, created_at=at, updated_at=at)


class NotificationKind(enum.Enum):
    """Why a notification is due."""

    STATUS = "status"
    COMMENT = "comment"
    ALERT = "alert"


class MentionKind(enum.Enum):
    """Who a mention calls."""

    ROLE = "role"
    USER = "user"


@attrs.frozen
class Mention:
    """A role or user to call in a message (a Discord snowflake id)."""

    kind: MentionKind
    id: str


@attrs.frozen
class Notification:
    """A due announcement: a displayed status change, something that happened to a
    comment, or an alert about the receiver itself.

    ``destination`` names the route it goes to (``"default"`` unless a
    project's route took it) and ``mentions`` who it calls; both are decided
    when the change is committed (``AnnouncePolicy``). ``actor_*`` is the user
    who acted, ``project_*`` where the file is. An alert has an empty
    ``file_id`` and ``alert`` says what started or ended.
    """

    kind: NotificationKind
    file_id: str
    at: datetime
    event_type: str
    delivery_id: str
    version: int
    name: str | None = None
    old_status: PostflowStatus | None = None
    new_status: PostflowStatus | None = None
    link: str | None = None
    comment_text: str | None = None
    comment_author: str | None = None
    comment_action: str | None = None
    open_comments: int | None = None
    project_id: str | None = None
    project_name: str | None = None
    actor_id: str | None = None
    actor_name: str | None = None
    destination: str = DEFAULT_DESTINATION
    mentions: tuple[Mention, ...] = ()
    alert: Alert | None = None
    id: int | None = None


def holds_comment(record: UploadRecord, key: str) -> bool:
    """True when ``record`` knows the comment ``key``, still there or deleted."""
    return key in record.removed_comments or any(e.key == key for e in record.comments)
