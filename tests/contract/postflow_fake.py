"""A stand-in for PostFlow 4.3's ``UploadTracker``, written from how PostFlow behaves.

PostFlow keeps ``tracking_data = {"version", "created_at", "last_updated",
"uploads": {upload_id: entry}}``; ``update_upload`` merges fields into an
existing entry (a dotted key such as ``"frameio_data.file_id"`` reaches into a
nested object) and saves; the status helpers write PostFlow's own
``UploadStatus`` values, emoji first. Every call is recorded.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any


class UploadStatus(enum.Enum):
    """PostFlow's own status values, as its tracker stores and compares them."""

    UPLOADING = "🔄 UPLOADING"
    PROCESSING = "⚙️ PROCESSING"
    COMPLETED = "🎉 COMPLETED"
    FAILED = "❌ FAILED"
    WAITING_APPROVAL = "⏳ WAITING_APPROVAL"
    APPROVED = "✅ APPROVED"
    REJECTED = "🚫 REJECTED"


def _now() -> str:
    return datetime.now(UTC).isoformat()


class FakeUploadTracker:
    """PostFlow's tracker object: entries in ``tracking_data["uploads"]``, calls recorded."""

    def __init__(self, uploads: dict[str, Any] | None = None) -> None:
        stamp = _now()
        self.tracking_data: dict[str, Any] = {
            "version": "1.0",
            "created_at": stamp,
            "last_updated": stamp,
            "uploads": dict(uploads or {}),
        }
        self.calls: list[tuple[Any, ...]] = []
        self.saves = 0
        self.fail_next = 0

    def save(self) -> None:
        """PostFlow persists after every change (here: counted)."""
        if self.fail_next:
            self.fail_next -= 1
            raise OSError("No space left on device: 'uploads_tracking.json'")
        self.saves += 1
        self.tracking_data["last_updated"] = _now()

    def get_upload(self, upload_id: str) -> dict[str, Any] | None:
        """One upload entry, or None."""
        entry = self.tracking_data["uploads"].get(upload_id)
        return entry if isinstance(entry, dict) else None

    def update_upload(self, upload_id: str, updates: dict[str, Any]) -> bool:
        """Merge ``updates`` into an existing entry; a dotted key sets a nested field."""
        self.calls.append(("update_upload", upload_id))
        return self._update(upload_id, updates)

    def mark_processing(self, upload_id: str) -> bool:
        """The upload is being processed by Frame.io."""
        self.calls.append(("mark_processing", upload_id))
        return self._update(
            upload_id, {"status": UploadStatus.PROCESSING.value, "processing_started": _now()}
        )

    def mark_completed(self, upload_id: str, frameio_data: dict[str, Any] | None = None) -> bool:
        """The upload is complete, with what Frame.io said about it."""
        self.calls.append(("mark_completed", upload_id, frameio_data))
        updates: dict[str, Any] = {"status": UploadStatus.COMPLETED.value, "completed_at": _now()}
        if frameio_data is not None:
            updates["frameio_data"] = frameio_data
        return self._update(upload_id, updates)

    def update_status(self, upload_id: str, status: UploadStatus | str) -> bool:
        """Set any status; PostFlow's code passes its enum, the receiver its value."""
        value = status.value if isinstance(status, UploadStatus) else status
        self.calls.append(("update_status", upload_id, value))
        return self._update(upload_id, {"status": value})

    def status_calls(self) -> list[tuple[Any, ...]]:
        """The status calls made so far (everything but update_upload)."""
        return [call for call in self.calls if call[0] != "update_upload"]

    def _update(self, upload_id: str, updates: dict[str, Any]) -> bool:
        entry = self.get_upload(upload_id)
        if entry is None:
            return False
        for key, value in updates.items():
            *parents, leaf = key.split(".")
            target = entry
            for parent in parents:
                nested = target.get(parent)
                if not isinstance(nested, dict):
                    nested = target[parent] = {}
                target = nested
            target[leaf] = value
        entry["last_updated"] = _now()
        self.save()
        return True
