"""PostFlow's upload-tracker entry format, shared by the JSON file and the live tracker.

An entry is ``{"filename", "status": <label>, "created_at", "updated_at",
"frameio_data": {"file_id", ...}, "webhook": <our full record>, ...}``; keys
this project does not own are kept untouched.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import attrs

from postflow_webhooks.adapters.serialization import from_plain, to_plain
from postflow_webhooks.domain.records import UploadRecord
from postflow_webhooks.domain.statuses import PostflowStatus, Processing, Review, axes_for

Document = dict[str, Any]


def linked_file_id(entry: Any) -> str | None:
    """The Frame.io file id an upload entry is linked to, if any."""
    if not isinstance(entry, dict):
        return None
    data = entry.get("frameio_data")
    if isinstance(data, dict) and isinstance(data.get("file_id"), str):
        return str(data["file_id"])
    return None


def entry_key(uploads: Document, file_id: str, name: str | None) -> str | None:
    """The key of the entry linked to ``file_id``, else of an unlinked one named ``name``."""
    for key, entry in uploads.items():
        if linked_file_id(entry) == file_id:
            return str(key)
    if not name:
        return None
    for key, entry in reversed(list(uploads.items())):
        linked = linked_file_id(entry)
        if isinstance(entry, dict) and entry.get("filename") == name and linked is None:
            return str(key)
    return None


def entry_record(key: str, entry: Document, file_id: str) -> UploadRecord:
    """An upload entry as a record (its saved state, else what its label says)."""
    saved = entry.get("webhook")
    if isinstance(saved, dict):
        try:
            record = from_plain(saved, UploadRecord)
            return attrs.evolve(record, upload_id=key, file_id=file_id)
        except Exception:  # an entry PostFlow edited by hand: fall back to its label
            pass
    status = PostflowStatus.from_text(str(entry.get("status", "")))
    processing, review = (Processing.NONE, Review.NONE)
    if status is not None:
        processing, review = axes_for(status)
    name = entry.get("filename")
    return UploadRecord(
        file_id=file_id,
        upload_id=key,
        name=name if isinstance(name, str) else None,
        processing=processing,
        review=review,
    )


def merge_entry(existing: Document, record: UploadRecord, key: str) -> Document:
    """``existing`` updated with ``record``; keys we do not own are kept."""
    entry = dict(existing)
    stamp = (record.updated_at or record.created_at or datetime.now(UTC)).isoformat()
    entry.setdefault("upload_id", key)
    if record.name and not entry.get("filename"):
        entry["filename"] = record.name
    entry["status"] = record.status.label if record.status else entry.get("status")
    entry.setdefault("created_at", stamp)
    entry["updated_at"] = stamp
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
            "deleted": record.deleted,
        }
    )
    entry["frameio_data"] = frameio
    saved = to_plain(attrs.evolve(record, upload_id=None))
    entry["webhook"] = saved
    return entry
