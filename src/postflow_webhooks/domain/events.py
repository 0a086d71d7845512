"""What a delivery means: one event, whichever of the three dialects sent it.

Dialects (``docs/architecture.md`` has examples):

* PostFlow: keyed by ``event_type``; the status is inside ``resource``.
* Frame.io V4: keyed by ``type``; IDs only.
* Legacy V2: keyed by ``type``, events named ``asset.*``.

Any of them may arrive wrapped as ``{"data": {...}}`` (``unwrap``). The edge
structures the JSON into a ``RawPayload``; ``WebhookEvent.from_raw`` gives it
its meaning here.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

import attrs

from postflow_webhooks.domain.errors import PayloadError, Problem
from postflow_webhooks.domain.payload import LINK_FIELDS, RawAuthor, RawPayload, RawResource

Links = tuple[tuple[str, str], ...]


class Dialect(enum.Enum):
    """Which sender's vocabulary a payload uses."""

    POSTFLOW = "postflow"
    V4 = "v4"
    V2 = "v2"


class EventKind(enum.Enum):
    """What an event means to the status table, whatever its dialect calls it."""

    CREATED = "created"
    UPLOAD_COMPLETED = "upload_completed"
    READY = "ready"
    STATUS_CHANGED = "status_changed"
    REVIEW_CHANGED = "review_changed"
    VERSIONED = "versioned"
    METADATA_CHANGED = "metadata_changed"
    UPDATED = "updated"
    COMMENT = "comment"
    DELETED = "deleted"
    RECONCILED = "reconciled"
    OTHER = "other"


class CommentAction(enum.Enum):
    """What happened to a comment."""

    CREATED = "created"
    UPDATED = "updated"
    DELETED = "deleted"
    COMPLETED = "completed"
    UNCOMPLETED = "uncompleted"


RECONCILE_EVENT = "postflow.reconciled"

COMMENT_ACTIONS: Mapping[str, CommentAction] = {
    f"comment.{action.value}": action for action in CommentAction
}

EVENT_KINDS: Mapping[str, EventKind] = {
    "file.created": EventKind.CREATED,
    "asset.created": EventKind.CREATED,
    "file.upload.completed": EventKind.UPLOAD_COMPLETED,
    "file.ready": EventKind.READY,
    "asset.ready": EventKind.READY,
    "file.status.changed": EventKind.STATUS_CHANGED,
    "review.status.changed": EventKind.REVIEW_CHANGED,
    "file.versioned": EventKind.VERSIONED,
    "asset.versioned": EventKind.VERSIONED,
    "metadata.value.updated": EventKind.METADATA_CHANGED,
    "asset.label.updated": EventKind.METADATA_CHANGED,
    "file.updated": EventKind.UPDATED,
    "asset.updated": EventKind.UPDATED,
    **dict.fromkeys(COMMENT_ACTIONS, EventKind.COMMENT),
    "file.deleted": EventKind.DELETED,
    "asset.deleted": EventKind.DELETED,
    RECONCILE_EVENT: EventKind.RECONCILED,
}

_V2_PREFIXES = ("asset.", "reviewlink.")
_COMMENT_TYPES = ("comment",)
# Resource types that are files we track (PostFlow's own payloads name no type).
# Anything else, such as a ``version_stack``, is recorded and never becomes a record.
TRACKED_RESOURCE_TYPES = ("file", "asset")


@attrs.frozen
class CommentText:
    """A comment's words, who wrote them and what happened to it, when the delivery says."""

    text: str | None = None
    author: str | None = None
    comment_id: str | None = None
    action: CommentAction = CommentAction.CREATED
    parent_id: str | None = None


@attrs.frozen
class WebhookEvent:
    """One Frame.io event, read from any dialect. Built with ``from_raw``."""

    event_type: str
    kind: EventKind
    dialect: Dialect
    resource_id: str | None = None
    resource_type: str | None = None
    file_id: str | None = None
    name: str | None = None
    status: str | None = None
    review_status: str | None = None
    version: int | None = None
    links: Links = ()
    comment: CommentText | None = None
    account_id: str | None = None
    workspace_id: str | None = None
    project_id: str | None = None
    user_id: str | None = None

    @property
    def ids_only(self) -> bool:
        """True for Frame.io's own dialects, whose payloads carry no names or statuses."""
        return self.dialect is not Dialect.POSTFLOW

    @property
    def untracked_resource(self) -> bool:
        """True when the resource is not a file we track (a ``version_stack``, a folder, ...)."""
        return self.file_id is None and not _tracked_type(self.resource_type)

    @classmethod
    def from_raw(cls, raw: RawPayload, root: str = "$") -> WebhookEvent:
        """The event a structured payload describes; ``PayloadError`` if it lacks an essential."""
        name = raw.event_type if raw.event_type is not None else raw.type
        resource = raw.resource or RawResource()
        problems = required_problems(name, resource.id, resource.file_id, root)
        if problems or name is None:
            raise PayloadError(tuple(problems))
        event_type = name.strip().lower()
        kind = EVENT_KINDS.get(event_type, EventKind.OTHER)
        return cls(
            event_type=event_type,
            kind=kind,
            dialect=_dialect(raw, event_type),
            resource_id=resource.id,
            resource_type=resource.type,
            file_id=_file_id(resource),
            name=resource.name,
            status=resource.status,
            review_status=resource.review_status or resource.label,
            version=resource.version,
            links=_collect_links(resource),
            comment=_comment(event_type, resource),
            account_id=raw.account.id if raw.account else None,
            workspace_id=raw.workspace.id if raw.workspace else None,
            project_id=raw.project.id if raw.project else None,
            user_id=raw.user.id if raw.user else None,
        )

    @classmethod
    def reconciliation(cls, file_id: str, account_id: str | None = None) -> WebhookEvent:
        """The internal event that applies a fresh look at a file from the API."""
        return cls(
            event_type=RECONCILE_EVENT,
            kind=EventKind.RECONCILED,
            dialect=Dialect.V4,
            resource_id=file_id,
            resource_type="file",
            file_id=file_id,
            account_id=account_id,
        )


def unwrap(payload: dict[str, Any]) -> tuple[object, str]:
    """The payload inside a ``{"data": {...}}`` wrapper, with its JSON path; else itself."""
    inner = payload.get("data")
    if isinstance(inner, dict) and "type" not in payload and "event_type" not in payload:
        return inner, "$.data"
    return payload, "$"


def required_problems(
    name: object, resource_id: object, file_id: object, root: str
) -> list[Problem]:
    """What a payload lacks: an event name, and an id for the events the table acts on.

    A value of the wrong type is not reported here: the edge reports it with its path.
    """
    if name is None or (isinstance(name, str) and not name.strip()):
        return [Problem(f"{root}.type", "required: an event name in 'type' or 'event_type'")]
    if not isinstance(name, str):
        return []
    event_type = name.strip().lower()
    kind = EVENT_KINDS.get(event_type, EventKind.OTHER)
    if kind is not EventKind.OTHER and resource_id is None and file_id is None:
        return [Problem(f"{root}.resource.id", f"required for {event_type}")]
    return []


def _dialect(raw: RawPayload, event_type: str) -> Dialect:
    if raw.event_type is not None:
        return Dialect.POSTFLOW
    if event_type.startswith(_V2_PREFIXES) or raw.team is not None:
        return Dialect.V2
    return Dialect.V4


def _about_comment(resource: RawResource) -> bool:
    return resource.type is not None and resource.type.lower() in _COMMENT_TYPES


def _tracked_type(resource_type: str | None) -> bool:
    if resource_type is None:
        return True
    folded = resource_type.strip().lower()
    return folded in TRACKED_RESOURCE_TYPES or folded in _COMMENT_TYPES


def _file_id(resource: RawResource) -> str | None:
    if resource.file_id is not None:
        return resource.file_id
    if _about_comment(resource) or not _tracked_type(resource.type):
        return None
    return resource.id


def _collect_links(resource: RawResource) -> Links:
    found = dict(resource.links or {})
    for field in LINK_FIELDS:
        value = getattr(resource, field)
        if value:
            found[field] = value
    return tuple(sorted(found.items()))


def _comment(event_type: str, resource: RawResource) -> CommentText | None:
    action = COMMENT_ACTIONS.get(event_type)
    if action is None:
        return None
    author = resource.author
    author_name = author.name if isinstance(author, RawAuthor) else author
    comment_id = resource.comment_id or (resource.id if _about_comment(resource) else None)
    return CommentText(
        text=resource.text or resource.comment,
        author=author_name,
        comment_id=comment_id,
        action=action,
        parent_id=resource.parent_id,
    )
