"""The rules of one event: apply it to one record and say what is due.

``apply_event`` is pure. The caller supplies the record (or ``None`` for a file
seen for the first time), the enrichment the API gave (possibly empty), the
time the delivery was received and its id. The caller persists the returned
record and notifications together.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

import attrs

from postflow_webhooks.domain.events import EventKind, Links, WebhookEvent
from postflow_webhooks.domain.records import (
    HISTORY_LIMIT,
    RECENT_COMMENTS_LIMIT,
    Enrichment,
    HistoryEntry,
    LastComment,
    Notification,
    NotificationKind,
    UploadRecord,
)
from postflow_webhooks.domain.state_machine import FileState, transition
from postflow_webhooks.domain.statuses import PostflowStatus, displayed_status


class Outcome(enum.Enum):
    """What applying an event did, for logs and stats."""

    STATUS_CHANGED = "status_changed"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    RECORDED = "recorded"
    IGNORED_DELETED = "ignored_deleted"


@attrs.frozen
class Decision:
    """The result of one event: the record to save (if any) and what is due."""

    outcome: Outcome
    file_id: str | None = None
    record: UploadRecord | None = None
    notifications: tuple[Notification, ...] = ()


def target_file_id(event: WebhookEvent, enrichment: Enrichment) -> str | None:
    """The file an event is about, from the payload or, for comments, the API."""
    if event.file_id is not None:
        return event.file_id
    if enrichment.comment is not None and enrichment.comment.file_id is not None:
        return enrichment.comment.file_id
    return None


# Events whose meaning depends on Frame.io's latest state: never decided on a cached answer.
FRESH_KINDS = frozenset(
    {EventKind.READY, EventKind.VERSIONED, EventKind.METADATA_CHANGED, EventKind.RECONCILED}
)


def wants_fresh_details(event: WebhookEvent) -> bool:
    """True when only Frame.io's answer of now may decide this event."""
    return event.kind in FRESH_KINDS


def wants_details(event: WebhookEvent) -> bool:
    """True when the API can add what an IDs-only delivery lacks."""
    return event.ids_only and event.kind not in (EventKind.OTHER, EventKind.DELETED)


def apply_event(
    record: UploadRecord | None,
    event: WebhookEvent,
    enrichment: Enrichment,
    *,
    at: datetime,
    delivery_id: str,
) -> Decision:
    """Apply ``event`` to ``record``; pure and idempotent on state."""
    file_id = target_file_id(event, enrichment)
    if file_id is None or event.kind is EventKind.OTHER:
        return Decision(Outcome.RECORDED, file_id=file_id)
    is_new = record is None
    current = record if record is not None else UploadRecord.new(file_id, at)
    if current.deleted:
        return Decision(Outcome.IGNORED_DELETED, file_id=file_id)
    before = FileState(
        processing=current.processing,
        review=current.review,
        version=current.version,
        version_fresh=current.version_fresh,
        deleted=current.deleted,
    )
    after = transition(before, event, enrichment)
    # Every change is gathered first and applied in one evolve: evolve is costly.
    changes: dict[str, Any] = {
        "processing": after.processing,
        "review": after.review,
        "version": after.version,
        "version_fresh": after.version_fresh,
        "deleted": after.deleted,
        "name": _name(current, event, enrichment),
        "links": _links(current, event, enrichment),
    }
    old_status = current.status
    new_status = displayed_status(after.processing, after.review)
    notifications: list[Notification] = []
    if new_status != old_status:
        entry = HistoryEntry(
            at=at,
            event_type=event.event_type,
            delivery_id=delivery_id,
            old_status=None if is_new else old_status,
            new_status=new_status,
            version=after.version,
        )
        changes["history"] = (*current.history, entry)[-HISTORY_LIMIT:]
        notifications.append(_status_notification(file_id, changes, entry))
    comment = _comment_changes(current, event, enrichment, at)
    if comment is not None:
        changes.update(comment)
        notifications.append(
            _comment_notification(file_id, changes, new_status, at, event, delivery_id)
        )
    if not is_new and all(getattr(current, key) == value for key, value in changes.items()):
        return Decision(Outcome.UNCHANGED, file_id=file_id)
    changes["updated_at"] = at
    updated = attrs.evolve(current, **changes)
    outcome = Outcome.STATUS_CHANGED if new_status != old_status else Outcome.UPDATED
    return Decision(outcome, file_id=file_id, record=updated, notifications=tuple(notifications))


def _name(record: UploadRecord, event: WebhookEvent, enrichment: Enrichment) -> str | None:
    if event.name:
        return event.name
    if enrichment.file is not None and enrichment.file.name:
        return enrichment.file.name
    return record.name


def _links(record: UploadRecord, event: WebhookEvent, enrichment: Enrichment) -> Links:
    merged = dict(record.links)
    merged.update(event.links)
    info = enrichment.file
    if info is not None:
        merged.update(info.links)
        if info.view_url:
            merged["view_url"] = info.view_url
    return tuple(sorted(merged.items()))


def _comment_changes(
    record: UploadRecord, event: WebhookEvent, enrichment: Enrichment, at: datetime
) -> dict[str, Any] | None:
    """The record's comment fields after a new comment; ``None`` when it is not new."""
    if event.kind is not EventKind.COMMENT:
        return None
    text = event.comment.text if event.comment else None
    author = event.comment.author if event.comment else None
    comment_id = event.comment.comment_id if event.comment else None
    if enrichment.comment is not None:
        text = enrichment.comment.text or text
        author = enrichment.comment.author or author
        comment_id = enrichment.comment.comment_id or comment_id
    key = f"id:{comment_id}" if comment_id else f"text:{author}:{text}"
    if key in record.recent_comment_keys:
        return None
    return {
        "comment_count": record.comment_count + 1,
        "recent_comment_keys": (*record.recent_comment_keys, key)[-RECENT_COMMENTS_LIMIT:],
        "last_comment": LastComment(text=text, author=author, at=at),
    }


def _comment_notification(
    file_id: str,
    changes: dict[str, Any],
    status: PostflowStatus | None,
    at: datetime,
    event: WebhookEvent,
    delivery_id: str,
) -> Notification:
    comment: LastComment = changes["last_comment"]
    return Notification(
        kind=NotificationKind.COMMENT,
        file_id=file_id,
        at=at,
        event_type=event.event_type,
        delivery_id=delivery_id,
        version=changes["version"],
        name=changes["name"],
        new_status=status,
        link=dict(changes["links"]).get("view_url"),
        comment_text=comment.text,
        comment_author=comment.author,
    )


def _status_notification(
    file_id: str, changes: dict[str, Any], entry: HistoryEntry
) -> Notification:
    return Notification(
        kind=NotificationKind.STATUS,
        file_id=file_id,
        at=entry.at,
        event_type=entry.event_type,
        delivery_id=entry.delivery_id,
        version=entry.version,
        name=changes["name"],
        old_status=entry.old_status,
        new_status=entry.new_status,
        link=dict(changes["links"]).get("view_url"),
    )
