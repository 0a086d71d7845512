"""``PostflowTrackerStore``: PostFlow's own ``UploadTracker`` object as the upload store.

PostFlow embeds the receiver and hands over its tracker. Status changes are
written the way PostFlow writes them: ``mark_processing`` for PROCESSING,
``mark_completed`` for COMPLETED (with the Frame.io data), ``update_status``
with the label otherwise, and ``update_upload`` for the rest of the entry.
The tracker is duck-typed (``PostflowTracker`` below says what is used); its
methods are called from one thread, one at a time.
"""

from __future__ import annotations

from typing import Any, Protocol

from postflow_webhooks.adapters.entry_store import EntryStore
from postflow_webhooks.adapters.tracker_format import (
    Document,
    entry_key,
    merge_entry,
)
from postflow_webhooks.domain.errors import StorageError
from postflow_webhooks.domain.records import UploadRecord
from postflow_webhooks.domain.statuses import PostflowStatus


class PostflowTracker(Protocol):
    """What this store uses of PostFlow's ``UploadTracker``."""

    tracking_data: dict[str, Any]

    def get_upload(self, upload_id: str) -> dict[str, Any] | None:
        """One upload entry, or ``None``."""
        ...

    def update_upload(self, upload_id: str, updates: dict[str, Any]) -> Any:
        """Merge fields into an upload entry (and persist)."""
        ...

    def mark_processing(self, upload_id: str) -> Any:
        """Set the upload's status to PROCESSING."""
        ...

    def mark_completed(self, upload_id: str, frameio_data: dict[str, Any] | None = None) -> Any:
        """Set the upload's status to COMPLETED, with its Frame.io data."""
        ...

    def update_status(self, upload_id: str, status: str) -> Any:
        """Set the upload's status label."""
        ...


class PostflowTrackerStore(EntryStore):
    """An upload store writing through PostFlow's tracker object."""

    def __init__(self, tracker: PostflowTracker) -> None:
        super().__init__("postflow-tracker")
        self.tracker = tracker

    async def _run(self, fn: Any, *args: Any) -> Any:
        try:
            return await super()._run(fn, *args)
        except StorageError:
            raise
        except Exception as exc:  # PostFlow's own code failed: report it, lose nothing
            raise StorageError(
                f"PostFlow's upload tracker failed: {type(exc).__name__}: {exc}"
            ) from exc

    def _uploads(self) -> Document:
        data = self.tracker.tracking_data
        uploads = data.get("uploads") if isinstance(data, dict) else None
        if isinstance(uploads, dict):
            return uploads
        if isinstance(data, dict):
            return data
        raise StorageError("PostFlow's tracker has no tracking_data dictionary")

    def _save(self, records: list[UploadRecord]) -> None:
        for record in records:
            uploads = self._uploads()
            key = record.upload_id if record.upload_id in uploads else None
            key = key or entry_key(uploads, record.file_id, record.name) or record.file_id
            existing = self.tracker.get_upload(key) or uploads.get(key) or {}
            merged = merge_entry(existing, record, key)
            if key not in uploads:
                uploads[key] = dict(merged)
            updates = {k: v for k, v in merged.items() if k != "status"}
            self.tracker.update_upload(key, updates)
            if merged.get("status") != existing.get("status") and record.status is not None:
                self._set_status(key, record.status, merged)

    def _set_status(self, key: str, status: PostflowStatus, entry: Document) -> None:
        if status is PostflowStatus.PROCESSING:
            self.tracker.mark_processing(key)
        elif status is PostflowStatus.COMPLETED:
            self.tracker.mark_completed(key, entry.get("frameio_data"))
        else:
            self.tracker.update_status(key, status.label)
