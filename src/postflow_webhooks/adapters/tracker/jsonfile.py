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

    def check(self) -> None:
        """Read the file now (at start, before the port is bound); ``StorageError`` naming the fix."""
        self._load()

    def _load(self) -> dict[str, Any]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {"version": FORMAT_VERSION, "uploads": {}}
        except UnicodeDecodeError as exc:
            bad = exc.object[exc.start]
            raise self._unusable(
                f"not valid UTF-8 (byte 0x{bad:02x} at offset {exc.start})"
            ) from None
        except OSError as exc:
            raise self._unusable(exc.strerror or str(exc)) from None
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise self._unusable(
                f"not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"
            ) from None
        except RecursionError:
            raise self._unusable("not valid JSON (nested too deeply)") from None
        if not isinstance(document, dict) or not isinstance(document.get("uploads", {}), dict):
            raise self._unusable("no 'uploads' object")
        document.setdefault("uploads", {})
        return document

    def _unusable(self, problem: str) -> StorageError:
        return StorageError(
            f"cannot use the tracker file {self.path}: {problem}. The file was left untouched. "
            "If it is damaged, repair it, or move it aside (keep it) to start a new file "
            "that holds the changes from then on."
        )

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
