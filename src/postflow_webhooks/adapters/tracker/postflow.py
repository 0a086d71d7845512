"""``PostflowTracker``: PostFlow's own ``UploadTracker`` object, kept in step when embedded.

Only PostFlow's own uploads are written: an entry linked to the Frame.io file,
else an unlinked entry of the same file name (PostFlow adds an entry before it
uploads). Files PostFlow does not know stay in the receiver's database only.
Status changes are written the way PostFlow writes them: ``mark_processing``
for PROCESSING, ``mark_completed`` for COMPLETED (with the Frame.io data),
``update_status`` with PostFlow's own status value otherwise, and
``update_upload`` for the rest of the entry. The tracker is duck-typed
(``UploadTracker`` below says what is used); its methods are called from one
thread, one at a time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol, TypeVar

from postflow_webhooks.adapters.tracker.entries import (
    Entries,
    Entry,
    entry_key,
    linked_records,
    merge_entry,
)
from postflow_webhooks.domain.errors import StorageError
from postflow_webhooks.domain.records import UploadRecord
from postflow_webhooks.domain.statuses import PostflowStatus

T = TypeVar("T")

log = logging.getLogger("postflow_webhooks.tracker")


class UploadTracker(Protocol):
    """What this adapter uses of PostFlow's ``UploadTracker``."""

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
        """Set the upload's status."""
        ...


class PostflowTracker:
    """Writes through PostFlow's tracker object; fits the ``Tracker`` port."""

    def __init__(self, tracker: UploadTracker) -> None:
        self.tracker = tracker
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="postflow-tracker")

    async def entries(self) -> list[UploadRecord]:
        """The records of the tracker's entries linked to Frame.io files."""
        found: list[UploadRecord] = await self._run(lambda: linked_records(self._uploads()))
        return found

    async def write(self, records: Sequence[UploadRecord]) -> None:
        """Bring the entries of these files up to date (PostFlow's uploads only)."""
        await self._run(lambda: self._write_records(list(records)))

    async def close(self) -> None:
        """Stop the adapter's thread."""
        self._pool.shutdown(wait=True)

    async def _run(self, fn: Any) -> Any:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._pool, fn)
        except StorageError:
            raise
        except Exception as exc:  # PostFlow's own code failed: report it, lose nothing
            raise StorageError(
                f"PostFlow's upload tracker failed: {type(exc).__name__}: {exc}"
            ) from exc

    def _uploads(self) -> Entries:
        data = self.tracker.tracking_data
        uploads = data.get("uploads") if isinstance(data, dict) else None
        if isinstance(uploads, dict):
            return uploads
        raise StorageError("PostFlow's tracker has no tracking_data['uploads'] dictionary")

    def _write_records(self, records: list[UploadRecord]) -> None:
        for record in records:
            uploads = self._uploads()
            key = entry_key(uploads, record.file_id, record.name)
            if key is None:
                # Not an upload of PostFlow's (a client's file, a test event): its
                # record is in the receiver's database; PostFlow's list stays its own.
                log.debug("file %s is not one of PostFlow's uploads; left out", record.file_id)
                continue
            existing = self.tracker.get_upload(key) or uploads.get(key) or {}
            merged = merge_entry(existing, record, key)
            self.tracker.update_upload(key, {k: v for k, v in merged.items() if k != "status"})
            if record.status is not None and merged.get("status") != existing.get("status"):
                self._set_status(key, record.status, merged)

    def _set_status(self, key: str, status: PostflowStatus, entry: Entry) -> None:
        if status is PostflowStatus.PROCESSING:
            self.tracker.mark_processing(key)
        elif status is PostflowStatus.COMPLETED:
            self.tracker.mark_completed(key, entry.get("frameio_data"))
        else:
            self.tracker.update_status(key, status.tracker_value)
