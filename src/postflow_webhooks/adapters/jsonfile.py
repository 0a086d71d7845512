"""``JsonUploadStore``: PostFlow's own tracker file, ``data/uploads_tracking.json``.

The file looks like ``{"version", "created_at", "last_updated", "uploads":
{upload_id: {...}}}``. An upload is found by ``frameio_data.file_id``, else by
``filename`` (PostFlow creates entries before Frame.io knows the file); a file
not yet tracked gets an entry of its own. Keys this store does not own are
kept as they are. Writes are atomic (temporary file, fsync, rename); a file
that cannot be read is reported and left untouched, never replaced.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from postflow_webhooks.adapters.listing import newest_first, of_status
from postflow_webhooks.adapters.tracker_format import (
    entry_key,
    entry_record,
    linked_file_id,
    merge_entry,
)
from postflow_webhooks.domain.errors import StorageError
from postflow_webhooks.domain.records import UploadRecord
from postflow_webhooks.domain.statuses import PostflowStatus

FILE_NAME = "uploads_tracking.json"
FORMAT_VERSION = "1.0"


Document = dict[str, Any]


class JsonUploadStore:
    """Tracked files in PostFlow's JSON tracker format."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="json-store")
        self._lock = threading.Lock()

    async def _run(self, fn: Any, *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, fn, *args)

    async def find(self, file_id: str, name: str | None = None) -> UploadRecord | None:
        """The upload linked to ``file_id``, else an unlinked one named ``name``."""
        result: UploadRecord | None = await self._run(self._find, file_id, name)
        return result

    async def find_many(self, keys: Sequence[tuple[str, str | None]]) -> dict[str, UploadRecord]:
        """``find`` for each (file id, name) pair, reading the file once."""
        found: dict[str, UploadRecord] = await self._run(self._find_many, list(keys))
        return found

    async def save(self, records: Sequence[UploadRecord]) -> None:
        """Write records into the file in one atomic replace."""
        await self._run(self._save, list(records))

    async def list_records(
        self, *, status: PostflowStatus | None = None, offset: int = 0, limit: int = 50
    ) -> list[UploadRecord]:
        """Records, most recently changed first, optionally of one status."""
        records: list[UploadRecord] = await self._run(self._all)
        return newest_first(records, status, offset, limit)

    async def count(self, *, status: PostflowStatus | None = None) -> int:
        """How many records, optionally of one status."""
        records: list[UploadRecord] = await self._run(self._all)
        return len(of_status(records, status))

    async def close(self) -> None:
        """Stop the file thread."""
        self._pool.shutdown(wait=True)

    # -- on the file thread ---------------------------------------------------

    def _find(self, file_id: str, name: str | None) -> UploadRecord | None:
        uploads = self._load()["uploads"]
        key = entry_key(uploads, file_id, name)
        return None if key is None else entry_record(key, uploads[key], file_id)

    def _find_many(self, keys: list[tuple[str, str | None]]) -> dict[str, UploadRecord]:
        uploads = self._load()["uploads"]
        found = {}
        for file_id, name in keys:
            key = entry_key(uploads, file_id, name)
            if key is not None:
                found[file_id] = entry_record(key, uploads[key], file_id)
        return found

    def _all(self) -> list[UploadRecord]:
        uploads = self._load()["uploads"]
        found = []
        for key, entry in uploads.items():
            file_id = linked_file_id(entry)
            if file_id is not None:
                found.append(entry_record(key, entry, file_id))
        return found

    def _save(self, records: list[UploadRecord]) -> None:
        with self._lock:
            document = self._load()
            uploads = document["uploads"]
            now = datetime.now(UTC).isoformat()
            for record in records:
                key = record.upload_id if record.upload_id in uploads else None
                key = key or entry_key(uploads, record.file_id, record.name) or record.file_id
                uploads[key] = merge_entry(uploads.get(key, {}), record, key)
            document["last_updated"] = now
            document.setdefault("created_at", now)
            document.setdefault("version", FORMAT_VERSION)
            self._write(document)

    def _load(self) -> Document:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {"version": FORMAT_VERSION, "uploads": {}}
        except OSError as exc:
            raise StorageError(f"cannot read the tracker file {self.path}: {exc}") from exc
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise StorageError(
                f"the tracker file {self.path} is not valid JSON ({exc}); it was left untouched"
            ) from None
        if not isinstance(document, dict) or not isinstance(document.get("uploads", {}), dict):
            raise StorageError(
                f"the tracker file {self.path} has no 'uploads' object; it was left untouched"
            )
        document.setdefault("uploads", {})
        return document

    def _write(self, document: Document) -> None:
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "w", encoding="utf-8") as handle:
                json.dump(document, handle, ensure_ascii=False, indent=2)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
            directory = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise StorageError(f"cannot write the tracker file {self.path}: {exc}") from exc
