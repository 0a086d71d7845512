"""``PostflowTrackerStore``: PostFlow's own ``UploadTracker`` object as the upload store.

PostFlow embeds the receiver and hands over its tracker. Status changes are
written the way PostFlow writes them: ``mark_processing`` for PROCESSING,
``mark_completed`` for COMPLETED (with the Frame.io data), ``update_status``
with the label otherwise, and ``update_upload`` for the rest of the entry.
The tracker is duck-typed (``PostflowTracker`` below says what is used); its
methods are called from one thread, one at a time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

from postflow_webhooks.adapters.listing import newest_first, of_status
from postflow_webhooks.adapters.tracker_format import (
    Document,
    entry_key,
    entry_record,
    linked_file_id,
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


class PostflowTrackerStore:
    """An upload store writing through PostFlow's tracker object."""

    def __init__(self, tracker: PostflowTracker) -> None:
        self.tracker = tracker
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="postflow-tracker")

    async def _run(self, fn: Any, *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._pool, fn, *args)
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

    async def find(self, file_id: str, name: str | None = None) -> UploadRecord | None:
        """The upload linked to ``file_id``, else an unlinked one named ``name``."""
        found = await self.find_many([(file_id, name)])
        return found.get(file_id)

    async def find_many(self, keys: Sequence[tuple[str, str | None]]) -> dict[str, UploadRecord]:
        """``find`` for each (file id, name) pair."""
        result: dict[str, UploadRecord] = await self._run(self._find_many, list(keys))
        return result

    def _find_many(self, keys: list[tuple[str, str | None]]) -> dict[str, UploadRecord]:
        uploads = self._uploads()
        found = {}
        for file_id, name in keys:
            key = entry_key(uploads, file_id, name)
            if key is not None:
                found[file_id] = entry_record(key, uploads[key], file_id)
        return found

    async def save(self, records: Sequence[UploadRecord]) -> None:
        """Write each record through the tracker's own methods."""
        await self._run(self._save, list(records))

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

    async def list_records(
        self, *, status: PostflowStatus | None = None, offset: int = 0, limit: int = 50
    ) -> list[UploadRecord]:
        """Linked uploads, most recently changed first, optionally of one status."""
        records: list[UploadRecord] = await self._run(self._all)
        return newest_first(records, status, offset, limit)

    async def count(self, *, status: PostflowStatus | None = None) -> int:
        """How many linked uploads, optionally of one status."""
        records: list[UploadRecord] = await self._run(self._all)
        return len(of_status(records, status))

    def _all(self) -> list[UploadRecord]:
        found = []
        for key, entry in list(self._uploads().items()):
            file_id = linked_file_id(entry)
            if file_id is not None:
                found.append(entry_record(str(key), entry, file_id))
        return found

    async def close(self) -> None:
        """Stop the tracker thread (the tracker itself belongs to PostFlow)."""
        self._pool.shutdown(wait=True)
