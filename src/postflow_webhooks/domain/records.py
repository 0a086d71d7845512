"""What the core knows about a tracked file, and what it asks to be announced."""

from __future__ import annotations

import enum
from datetime import datetime

import attrs

from postflow_webhooks.domain.alerts import Alert
from postflow_webhooks.domain.events import Links
from postflow_webhooks.domain.statuses import PostflowStatus, Processing, Review, displayed_status

HISTORY_LIMIT = 200
RECENT_COMMENTS_LIMIT = 50


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


@attrs.frozen
class CommentInfo:
    """A comment as Frame.io's API describes it."""

    comment_id: str
    file_id: str | None = None
    text: str | None = None
    author: str | None = None


@attrs.frozen
class Enrichment:
    """What the API added to an IDs-only delivery; empty when nothing was looked up."""

    file: FileInfo | None = None
    comment: CommentInfo | None = None


@attrs.frozen
class LastComment:
    """The latest comment seen on a file."""

    text: str | None
    author: str | None
    at: datetime


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
    comment_count: int = 0
    recent_comment_keys: tuple[str, ...] = ()
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


@attrs.frozen
class Notification:
    """A due announcement: a displayed status change, a new comment, or an alert.

    An alert is about the receiver itself: its ``file_id`` is empty and
    ``alert`` says what started or ended.
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
    alert: Alert | None = None
    id: int | None = None
