"""``JsonTracker``: PostFlow's tracker file, ``data/uploads_tracking.json``, kept in step.

The file looks like ``{"version", "created_at", "last_updated", "uploads":
{upload_id: {...}}}`` (``entries.py``). A Frame.io file is written to the
entry linked to it, else to an unlinked entry of the same name (PostFlow
creates entries before Frame.io knows the file), else to a new entry. Writes
are atomic (temporary file, fsync, rename); a file that cannot be read is
reported and left untouched, never replaced.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from postflow_webhooks.adapters.tracker.entries import linked_records, merge_entry, place
from postflow_webhooks.domain.errors import StorageError
from postflow_webhooks.domain.records import UploadRecord

FILE_NAME = "uploads_tracking.json"
FORMAT_VERSION = "1.0"


class JsonTracker:
    """PostFlow's tracker file; fits the ``Tracker`` port."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="json-tracker")

    async def entries(self) -> list[UploadRecord]:
        """The records of the file's entries linked to Frame.io files."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, lambda: linked_records(self._uploads()))

    async def write(self, records: Sequence[UploadRecord]) -> None:
        """Bring these files' entries up to date, in one atomic rewrite."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._pool, self._write_records, list(records))

    async def close(self) -> None:
        """Stop the file's thread."""
        self._pool.shutdown(wait=True)

    def _uploads(self) -> dict[str, Any]:
        uploads: dict[str, Any] = self._load()["uploads"]
        return uploads

    def _write_records(self, records: list[UploadRecord]) -> None:
        document = self._load()
        uploads = document["uploads"]
        now = datetime.now(UTC).isoformat()
        for record in records:
            key = place(uploads, record)
            uploads[key] = merge_entry(uploads.get(key, {}), record, key)
        document["last_updated"] = now
        document.setdefault("created_at", now)
        document.setdefault("version", FORMAT_VERSION)
        self._replace(document)

    def _load(self) -> dict[str, Any]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {"version": FORMAT_VERSION, "uploads": {}}
        except (OSError, UnicodeDecodeError) as exc:
            raise StorageError(f"cannot read the tracker file {self.path}: {exc}") from None
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

    def _replace(self, document: dict[str, Any]) -> None:
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
