"""PostFlow's upload-tracker entries, as its ``UploadTracker`` writes them.

An entry is ``{"upload_id", "filename", "status": "✅ APPROVED", "created_at",
"last_updated", "frameio_data": {"file_id", ...}, ...}``. The status is
PostFlow's own ``UploadStatus`` value (emoji first), which PostFlow's code
compares. Our full record rides along under ``"webhook"``; every key this
project does not own is kept untouched.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import attrs

from postflow_webhooks.adapters.serialization import from_plain, to_plain
from postflow_webhooks.domain.records import UploadRecord
from postflow_webhooks.domain.statuses import PostflowStatus, Processing, Review, axes_for

Entry = dict[str, Any]
Entries = dict[str, Any]

NAME_KEYS = ("filename", "file_name")


def linked_file_id(entry: Any) -> str | None:
    """The Frame.io file id an upload entry is linked to, if any."""
    if not isinstance(entry, dict):
        return None
    data = entry.get("frameio_data")
    if isinstance(data, dict) and isinstance(data.get("file_id"), str) and data["file_id"]:
        return str(data["file_id"])
    return None


def entry_name(entry: Entry) -> str | None:
    """The file name PostFlow recorded for an entry."""
    for key in NAME_KEYS:
        value = entry.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def entry_key(uploads: Entries, file_id: str, name: str | None) -> str | None:
    """The key of the entry linked to ``file_id``, else of the newest unlinked one named ``name``."""
    for key, entry in uploads.items():
        if linked_file_id(entry) == file_id:
            return str(key)
    if not name:
        return None
    for key, entry in reversed(list(uploads.items())):
        if isinstance(entry, dict) and linked_file_id(entry) is None and entry_name(entry) == name:
            return str(key)
    return None


def entry_record(entry: Entry, file_id: str) -> UploadRecord:
    """An upload entry as a record: our saved record, else what its status says."""
    saved = entry.get("webhook")
    if isinstance(saved, dict):
        try:
            return attrs.evolve(from_plain(saved, UploadRecord), file_id=file_id)
        except Exception:  # an entry edited by hand: fall back to its status
            pass
    status = PostflowStatus.from_text(str(entry.get("status", "")))
    processing, review = (Processing.NONE, Review.NONE)
    if status is not None:
        processing, review = axes_for(status)
    return UploadRecord(
        file_id=file_id, name=entry_name(entry), processing=processing, review=review
    )


def linked_records(uploads: Entries) -> list[UploadRecord]:
    """The records of every entry linked to a Frame.io file."""
    found = []
    for entry in uploads.values():
        file_id = linked_file_id(entry)
        if file_id is not None:
            found.append(entry_record(entry, file_id))
    return found


def merge_entry(existing: Entry, record: UploadRecord, key: str) -> Entry:
    """``existing`` brought up to date with ``record``; keys we do not own are kept."""
    entry = dict(existing)
    stamp = (record.updated_at or record.created_at or datetime.now(UTC)).isoformat()
    entry.setdefault("upload_id", key)
    if record.name and entry_name(entry) is None:
        entry["filename"] = record.name
    if record.status is not None:
        entry["status"] = record.status.tracker_value
    entry.setdefault("created_at", stamp)
    entry["last_updated"] = stamp
    frameio = dict(entry.get("frameio_data") or {})
    frameio.update(
        {
            "file_id": record.file_id,
            "version": record.version,
            "processing": record.processing.value,
            "review": record.review.value,
            "links": dict(record.links),
            "view_url": record.view_url,
            "comment_count": record.comment_count,
            "open_comments": record.open_comments,
            "deleted": record.deleted,
        }
    )
    entry["frameio_data"] = frameio
    entry["webhook"] = to_plain(record)
    return entry


def place(uploads: Entries, record: UploadRecord) -> str:
    """The key ``record`` is written under: its linked entry, a same-named one, or its file id."""
    return entry_key(uploads, record.file_id, record.name) or record.file_id
