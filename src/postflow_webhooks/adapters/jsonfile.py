"""``JsonUploadStore``: PostFlow's own tracker file, ``data/uploads_tracking.json``.

The file looks like ``{"version", "created_at", "last_updated", "uploads":
{upload_id: {...}}}``. An upload is found by ``frameio_data.file_id``, else by
``filename`` (PostFlow creates entries before Frame.io knows the file); a file
not yet tracked gets an entry of its own. Keys this store does not own are
kept as they are. Writes are atomic (temporary file, fsync, rename); a file
that cannot be read is reported and left untouched, never replaced.
"""

from __future__ import annotations

import json
import os
import threading
from datetime import UTC, datetime
from pathlib import Path

from postflow_webhooks.adapters.entry_store import EntryStore
from postflow_webhooks.adapters.tracker_format import Document, entry_key, merge_entry
from postflow_webhooks.domain.errors import StorageError
from postflow_webhooks.domain.records import UploadRecord

FILE_NAME = "uploads_tracking.json"
FORMAT_VERSION = "1.0"


class JsonUploadStore(EntryStore):
    """Tracked files in PostFlow's JSON tracker format."""

    def __init__(self, path: Path) -> None:
        super().__init__("json-store")
        self.path = path
        self._lock = threading.Lock()

    def _uploads(self) -> Document:
        uploads: Document = self._load()["uploads"]
        return uploads

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
