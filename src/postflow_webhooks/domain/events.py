"""Reading a Frame.io delivery, in any of its three dialects, into one event.

Dialects (``docs/architecture.md`` has examples):

* PostFlow: keyed by ``event_type``; the status is inside ``resource``.
* Frame.io V4: keyed by ``type``; IDs only.
* Legacy V2: keyed by ``type``, events named ``asset.*``.

Any of them may arrive wrapped as ``{"data": {...}}``.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

import attrs
import cattrs
from cattrs.errors import ClassValidationError

from postflow_webhooks.domain.errors import PayloadError, Problem
from postflow_webhooks.domain.raw_payload import (
    DETAILED,
    FAST,
    LINK_FIELDS,
    PlainPayload,
    RawAuthor,
    RawPayload,
    RawResource,
    json_type,
    read_plain,
)

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
    COMMENT = "comment"
    DELETED = "deleted"
    RECONCILED = "reconciled"
    OTHER = "other"


RECONCILE_EVENT = "postflow.reconciled"

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
    "comment.created": EventKind.COMMENT,
    "file.deleted": EventKind.DELETED,
    "asset.deleted": EventKind.DELETED,
    RECONCILE_EVENT: EventKind.RECONCILED,
}

_V2_PREFIXES = ("asset.", "reviewlink.")
_COMMENT_TYPES = ("comment",)


def _structure(payload: dict[str, Any], root: str) -> RawPayload:
    try:
        raw: RawPayload = FAST.structure(payload, RawPayload)
        return raw
    except Exception:  # any refusal: let the detailed pass say exactly what is wrong
        pass
    try:
        detailed: RawPayload = DETAILED.structure(payload, RawPayload)
    except ClassValidationError as exc:
        raise PayloadError((*_problems(exc, root), *_missing_in(payload, root))) from None
    return detailed


@attrs.frozen
class CommentText:
    """A comment's words and who wrote them, when the delivery says."""

    text: str | None = None
    author: str | None = None
    comment_id: str | None = None


@attrs.frozen
class WebhookEvent:
    """One Frame.io event, read from any dialect. Built with ``from_payload``."""

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

    @classmethod
    def from_payload(cls, payload: object) -> WebhookEvent:
        """Read a decoded JSON payload; raise ``PayloadError`` listing every problem."""
        root = "$"
        if isinstance(payload, dict) and _is_wrapped(payload):
            payload, root = payload["data"], "$.data"
        if not isinstance(payload, dict):
            raise PayloadError((Problem(root, f"expected an object, got {json_type(payload)}"),))
        plain = read_plain(payload)
        if plain is not None:
            event = _event_from_plain(plain, root)
            if event is not None:
                return event
        return _event_from_raw(_structure(payload, root), root)

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


def _is_wrapped(payload: dict[str, Any]) -> bool:
    return (
        isinstance(payload.get("data"), dict)
        and "type" not in payload
        and "event_type" not in payload
    )


def _problems(exc: ClassValidationError, root: str) -> tuple[Problem, ...]:
    found = []
    for message in cattrs.transform_error(exc, path=root, format_exception=_describe):
        text, _, path = message.rpartition(" @ ")
        found.append(Problem(path or root, text or message))
    return tuple(found)


def _describe(exc: BaseException, _type: object) -> str:
    if isinstance(exc, ValueError | TypeError):
        return str(exc)
    if isinstance(exc, KeyError):
        return "required"
    return "unreadable value"


def _missing(name: object, resource_id: object, file_id: object, root: str) -> list[Problem]:
    """What a payload lacks; a value of the wrong type is reported by the converter."""
    if name is None or (isinstance(name, str) and not name.strip()):
        return [Problem(f"{root}.type", "required: an event name in 'type' or 'event_type'")]
    if not isinstance(name, str):
        return []
    event_type = name.strip().lower()
    kind = EVENT_KINDS.get(event_type, EventKind.OTHER)
    if kind is not EventKind.OTHER and resource_id is None and file_id is None:
        return [Problem(f"{root}.resource.id", f"required for {event_type}")]
    return []


def _missing_in(payload: dict[str, Any], root: str) -> list[Problem]:
    """``_missing`` for a payload the converter rejected, read from the plain dict."""
    name = payload.get("event_type")
    if name is None:
        name = payload.get("type")
    resource = payload.get("resource", {})
    if not isinstance(resource, dict):
        # The resource itself is of the wrong type: reported, no id to miss inside.
        return _missing(name, resource, None, root)
    return _missing(name, resource.get("id"), resource.get("file_id"), root)


def _event_from_raw(raw: RawPayload, root: str) -> WebhookEvent:
    name = raw.event_type if raw.event_type is not None else raw.type
    resource = raw.resource or RawResource()
    problems = _missing(name, resource.id, resource.file_id, root)
    if problems or name is None:
        raise PayloadError(tuple(problems))
    event_type = name.strip().lower()
    kind = EVENT_KINDS.get(event_type, EventKind.OTHER)
    dialect = _dialect(raw, event_type)
    return WebhookEvent(
        event_type=event_type,
        kind=kind,
        dialect=dialect,
        resource_id=resource.id,
        resource_type=resource.type,
        file_id=_file_id(resource),
        name=resource.name,
        status=resource.status,
        review_status=resource.review_status or resource.label,
        version=resource.version,
        links=_collect_links(resource),
        comment=_comment(kind, resource),
        account_id=raw.account.id if raw.account else None,
        workspace_id=raw.workspace.id if raw.workspace else None,
        project_id=raw.project.id if raw.project else None,
        user_id=raw.user.id if raw.user else None,
    )


def _event_from_plain(plain: PlainPayload, root: str) -> WebhookEvent | None:
    """``_event_from_raw`` for a plain payload; ``None`` when it lacks something required."""
    name = plain.event_type if plain.event_type is not None else plain.type
    fields = plain.resource
    resource_id = fields.get("id")
    if name is None or _missing(name, resource_id, fields.get("file_id"), root):
        return None  # the converter's path reports exactly what is missing
    event_type = name.strip().lower()
    kind = EVENT_KINDS.get(event_type, EventKind.OTHER)
    if plain.event_type is not None:
        dialect = Dialect.POSTFLOW
    elif event_type.startswith(_V2_PREFIXES) or "team" in plain.refs:
        dialect = Dialect.V2
    else:
        dialect = Dialect.V4
    resource_type = fields.get("type")
    about_comment = resource_type is not None and resource_type.lower() in _COMMENT_TYPES
    file_id = fields.get("file_id") or (None if about_comment else resource_id)
    comment = None
    if kind is EventKind.COMMENT:
        comment = CommentText(
            text=fields.get("text") or fields.get("comment"),
            author=None,
            comment_id=fields.get("comment_id") or (resource_id if about_comment else None),
        )
    refs = plain.refs
    return WebhookEvent(
        event_type=event_type,
        kind=kind,
        dialect=dialect,
        resource_id=resource_id,
        resource_type=resource_type,
        file_id=file_id,
        name=fields.get("name"),
        status=fields.get("status"),
        review_status=fields.get("review_status") or fields.get("label"),
        links=tuple(sorted((key, fields[key]) for key in LINK_FIELDS if fields.get(key))),
        comment=comment,
        account_id=refs.get("account"),
        workspace_id=refs.get("workspace"),
        project_id=refs.get("project"),
        user_id=refs.get("user"),
    )


def _dialect(raw: RawPayload, event_type: str) -> Dialect:
    if raw.event_type is not None:
        return Dialect.POSTFLOW
    if event_type.startswith(_V2_PREFIXES) or raw.team is not None:
        return Dialect.V2
    return Dialect.V4


def _file_id(resource: RawResource) -> str | None:
    if resource.file_id is not None:
        return resource.file_id
    if resource.type is not None and resource.type.lower() in _COMMENT_TYPES:
        return None
    return resource.id


def _collect_links(resource: RawResource) -> Links:
    found = dict(resource.links or {})
    for field in LINK_FIELDS:
        value = getattr(resource, field)
        if value:
            found[field] = value
    return tuple(sorted(found.items()))


def _comment(kind: EventKind, resource: RawResource) -> CommentText | None:
    if kind is not EventKind.COMMENT:
        return None
    author = resource.author
    author_name = author.name if isinstance(author, RawAuthor) else author
    is_comment_resource = resource.type is not None and resource.type.lower() in _COMMENT_TYPES
    comment_id = resource.comment_id or (resource.id if is_comment_resource else None)
    return CommentText(
        text=resource.text or resource.comment, author=author_name, comment_id=comment_id
    )
