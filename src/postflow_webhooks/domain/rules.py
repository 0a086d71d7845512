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

from postflow_webhooks.domain.comments import apply_comment, comment_facts
from postflow_webhooks.domain.events import EventKind, Links, WebhookEvent
from postflow_webhooks.domain.mapping import DEFAULT_REVIEW_MAPPING, ReviewMapping
from postflow_webhooks.domain.records import (
    HISTORY_LIMIT,
    Enrichment,
    HistoryEntry,
    Notification,
    NotificationKind,
    UploadRecord,
)
from postflow_webhooks.domain.state_machine import FileState, transition, unmapped_review_option
from postflow_webhooks.domain.statuses import displayed_status


class Outcome(enum.Enum):
    """What applying an event did, for logs and stats."""

    STATUS_CHANGED = "status_changed"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    RECORDED = "recorded"
    IGNORED_DELETED = "ignored_deleted"
    UNTRACKED_RESOURCE = "untracked_resource"


@attrs.frozen
class Decision:
    """The result of one event: the record to save (if any) and what is due.

    ``unmapped_option`` is a review-field value the studio's mapping does not
    know: it decided nothing, and the caller reports it.
    """

    outcome: Outcome
    file_id: str | None = None
    record: UploadRecord | None = None
    notifications: tuple[Notification, ...] = ()
    unmapped_option: str | None = None


def target_file_id(event: WebhookEvent, enrichment: Enrichment) -> str | None:
    """The file an event is about, from the payload or, for comments, the API."""
    if event.file_id is not None:
        return event.file_id
    if enrichment.comment is not None and enrichment.comment.file_id is not None:
        return enrichment.comment.file_id
    return None


# Events whose meaning depends on Frame.io's latest state: never decided on a cached answer.
FRESH_KINDS = frozenset(
    {
        EventKind.READY,
        EventKind.VERSIONED,
        EventKind.METADATA_CHANGED,
        EventKind.RECONCILED,
        EventKind.UPDATED,
    }
)


def wants_fresh_details(event: WebhookEvent) -> bool:
    """True when only Frame.io's answer of now may decide this event."""
    return event.kind in FRESH_KINDS


def wants_details(event: WebhookEvent) -> bool:
    """True when the API can add what an IDs-only delivery lacks."""
    return (
        event.ids_only
        and event.kind not in (EventKind.OTHER, EventKind.DELETED)
        and not event.untracked_resource
    )


def apply_event(
    record: UploadRecord | None,
    event: WebhookEvent,
    enrichment: Enrichment,
    *,
    at: datetime,
    delivery_id: str,
    mapping: ReviewMapping = DEFAULT_REVIEW_MAPPING,
) -> Decision:
    """Apply ``event`` to ``record`` with the studio's review ``mapping``; pure and idempotent."""
    if event.untracked_resource:
        return Decision(Outcome.UNTRACKED_RESOURCE)
    file_id = target_file_id(event, enrichment)
    if file_id is None or event.kind is EventKind.OTHER:
        return Decision(Outcome.RECORDED, file_id=file_id)
    is_new = record is None
    if is_new and event.kind is EventKind.UPDATED:
        # A rename of a file we do not track: nothing to refresh.
        return Decision(Outcome.RECORDED, file_id=file_id)
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
    after = transition(before, event, enrichment, mapping=mapping)
    unmapped = unmapped_review_option(event, enrichment, mapping=mapping)
    project_id = _project_id(current, event, enrichment)
    # Every change is gathered first and applied in one evolve: evolve is costly.
    changes: dict[str, Any] = {
        "processing": after.processing,
        "review": after.review,
        "version": after.version,
        "version_fresh": after.version_fresh,
        "deleted": after.deleted,
        "name": _name(current, event, enrichment),
        "links": _links(current, event, enrichment),
        "project_id": project_id,
        "project_name": _project_name(current, project_id, enrichment),
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
        notifications.append(_status_notification(file_id, changes, entry, event, enrichment))
    facts = comment_facts(event, enrichment)
    comment = apply_comment(current, facts, at) if facts is not None else None
    if comment is not None:
        changes.update(comment.fields)
        if comment.announce is not None:
            notifications.append(
                Notification(
                    kind=NotificationKind.COMMENT,
                    comment_action=comment.announce.value,
                    comment_text=comment.text,
                    comment_author=comment.author,
                    open_comments=changes["open_comments"],
                    **_about(file_id, changes, event, enrichment, at, delivery_id),
                    new_status=new_status,
                )
            )
    if not is_new and all(getattr(current, key) == value for key, value in changes.items()):
        return Decision(Outcome.UNCHANGED, file_id=file_id, unmapped_option=unmapped)
    changes["updated_at"] = at
    updated = attrs.evolve(current, **changes)
    outcome = Outcome.STATUS_CHANGED if new_status != old_status else Outcome.UPDATED
    return Decision(
        outcome,
        file_id=file_id,
        record=updated,
        notifications=tuple(notifications),
        unmapped_option=unmapped,
    )


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


def _project_id(record: UploadRecord, event: WebhookEvent, enrichment: Enrichment) -> str | None:
    if event.project_id:
        return event.project_id
    if enrichment.file is not None and enrichment.file.project_id:
        return enrichment.file.project_id
    return record.project_id


def _project_name(
    record: UploadRecord, project_id: str | None, enrichment: Enrichment
) -> str | None:
    if enrichment.project_name:
        return enrichment.project_name
    return record.project_name if project_id == record.project_id else None


def _about(
    file_id: str,
    changes: dict[str, Any],
    event: WebhookEvent,
    enrichment: Enrichment,
    at: datetime,
    delivery_id: str,
) -> dict[str, Any]:
    """What every notification says about the file, where it is and who acted."""
    return {
        "file_id": file_id,
        "at": at,
        "event_type": event.event_type,
        "delivery_id": delivery_id,
        "version": changes["version"],
        "name": changes["name"],
        "link": dict(changes["links"]).get("view_url"),
        "project_id": changes["project_id"],
        "project_name": changes["project_name"],
        "actor_id": event.user_id,
        "actor_name": enrichment.actor_name,
    }


def _status_notification(
    file_id: str,
    changes: dict[str, Any],
    entry: HistoryEntry,
    event: WebhookEvent,
    enrichment: Enrichment,
) -> Notification:
    return Notification(
        kind=NotificationKind.STATUS,
        old_status=entry.old_status,
        new_status=entry.new_status,
        **_about(file_id, changes, event, enrichment, entry.at, entry.delivery_id),
    )
