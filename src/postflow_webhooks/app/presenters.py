"""Plain-JSON views of domain values, for the HTTP endpoints and the CLI."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from postflow_webhooks.domain.endpoint import webhook_url
from postflow_webhooks.domain.health import Finding
from postflow_webhooks.domain.journal import DeadLetter, LastEvent, PendingDelivery
from postflow_webhooks.domain.ports import TunnelInfo
from postflow_webhooks.domain.records import CommentEntry, UploadRecord


def iso(moment: datetime | None) -> str | None:
    """An ISO 8601 string, or ``None``."""
    return moment.isoformat() if moment else None


def present_record(record: UploadRecord, *, history: bool = False) -> dict[str, Any]:
    """A tracked file as JSON; with its history when asked."""
    status = record.status
    body: dict[str, Any] = {
        "file_id": record.file_id,
        "name": record.name,
        "status": status.name if status else None,
        "status_label": status.label if status else None,
        "processing": record.processing.value,
        "review": record.review.value,
        "version": record.version,
        "links": dict(record.links),
        "view_url": record.view_url,
        "project_id": record.project_id,
        "project_name": record.project_name,
        "comment_count": record.comment_count,
        "open_comments": record.open_comments,
        "last_comment": (
            {
                "text": record.last_comment.text,
                "author": record.last_comment.author,
                "at": iso(record.last_comment.at),
            }
            if record.last_comment
            else None
        ),
        "deleted": record.deleted,
        "created_at": iso(record.created_at),
        "updated_at": iso(record.updated_at),
    }
    if history:
        body["history"] = [
            {
                "at": iso(entry.at),
                "event_type": entry.event_type,
                "delivery_id": entry.delivery_id,
                "old_status": entry.old_status.label if entry.old_status else None,
                "new_status": entry.new_status.label if entry.new_status else None,
                "version": entry.version,
            }
            for entry in record.history
        ]
        body["comments"] = present_comments(record.comments)
    return body


def _comment_id(key: str | None) -> str | None:
    """A comment's Frame.io id from its key (``None`` for one known only by its words)."""
    return key.removeprefix("id:") if key and key.startswith("id:") else None


def present_comments(entries: tuple[CommentEntry, ...]) -> list[dict[str, Any]]:
    """Every comment still on a file, in the order seen; a reply takes its thread's state."""
    resolved = {e.key for e in entries if e.is_thread and e.completed}
    return [
        {
            "id": _comment_id(entry.key),
            "key": entry.key,
            "thread": _comment_id(entry.thread),
            "thread_key": entry.thread,
            "state": "resolved" if (entry.thread or entry.key) in resolved else "open",
            "text": entry.text,
            "author": entry.author,
            "at": iso(entry.at),
        }
        for entry in entries
    ]


def present_deferred(delivery: PendingDelivery) -> dict[str, Any]:
    """A delivery waiting for enrichment, as JSON."""
    return {
        "delivery_id": delivery.delivery_id,
        "event_type": delivery.event_type,
        "file_id": delivery.file_id,
        "received_at": iso(delivery.received_at),
        "attempts": delivery.attempts,
        "next_attempt_at": iso(delivery.not_before),
        "last_error": delivery.last_error,
    }


def present_last_event(event: LastEvent | None) -> dict[str, Any] | None:
    """The last applied event as JSON."""
    if event is None:
        return None
    return {
        "delivery_id": event.delivery_id,
        "event_type": event.event_type,
        "file_id": event.file_id,
        "outcome": event.outcome,
        "at": iso(event.at),
    }


def present_tunnel(info: TunnelInfo) -> dict[str, Any]:
    """The tunnel's state as JSON (``tunnel_info``)."""
    return {
        "mode": info.mode,
        "state": info.state,
        "public_url": info.public_url,
        "webhook_url": webhook_url(info.public_url) if info.public_url else None,
        "ready": info.ready,
        "restarts": info.restarts,
        "last_error": info.last_error,
        "since": iso(info.since),
    }


def present_dead_letter(letter: DeadLetter) -> dict[str, Any]:
    """A dead-lettered notification as JSON."""
    notification = letter.notification
    return {
        "id": notification.id,
        "file_id": notification.file_id,
        "name": notification.name,
        "status": notification.new_status.label if notification.new_status else None,
        "reason": letter.reason,
        "at": iso(letter.at),
    }


def present_finding(finding: Finding) -> dict[str, Any]:
    """One health finding as JSON: reason, severity, words, since when."""
    return {
        "reason": finding.reason,
        "severity": finding.severity.value,
        "message": finding.message,
        "since": iso(finding.since),
    }
