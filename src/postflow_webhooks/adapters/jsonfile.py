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

import attrs

from postflow_webhooks.adapters.serialization import from_plain, to_plain
from postflow_webhooks.domain.errors import StorageError
from postflow_webhooks.domain.records import UploadRecord
from postflow_webhooks.domain.statuses import PostflowStatus, Processing, Review

FILE_NAME = "uploads_tracking.json"
FORMAT_VERSION = "1.0"

_FROM_LABEL: dict[PostflowStatus, tuple[Processing, Review]] = {
    PostflowStatus.UPLOADING: (Processing.UPLOADING, Review.NONE),
    PostflowStatus.PROCESSING: (Processing.PROCESSING, Review.NONE),
    PostflowStatus.COMPLETED: (Processing.READY, Review.NONE),
    PostflowStatus.FAILED: (Processing.FAILED, Review.NONE),
    PostflowStatus.WAITING_APPROVAL: (Processing.NONE, Review.NEEDS_REVIEW),
    PostflowStatus.APPROVED: (Processing.NONE, Review.APPROVED),
    PostflowStatus.REJECTED: (Processing.NONE, Review.REJECTED),
}

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
        found = [r for r in records if status is None or r.status is status]
        found.sort(key=_changed, reverse=True)
        return found[offset : offset + limit]

    async def count(self, *, status: PostflowStatus | None = None) -> int:
        """How many records, optionally of one status."""
        records: list[UploadRecord] = await self._run(self._all)
        return sum(1 for r in records if status is None or r.status is status)

    async def close(self) -> None:
        """Stop the file thread."""
        self._pool.shutdown(wait=True)

    # -- on the file thread ---------------------------------------------------

    def _find(self, file_id: str, name: str | None) -> UploadRecord | None:
        uploads = self._load()["uploads"]
        key = _key_for(uploads, file_id, name)
        return None if key is None else _record(key, uploads[key], file_id)

    def _find_many(self, keys: list[tuple[str, str | None]]) -> dict[str, UploadRecord]:
        uploads = self._load()["uploads"]
        found = {}
        for file_id, name in keys:
            key = _key_for(uploads, file_id, name)
            if key is not None:
                found[file_id] = _record(key, uploads[key], file_id)
        return found

    def _all(self) -> list[UploadRecord]:
        uploads = self._load()["uploads"]
        found = []
        for key, entry in uploads.items():
            file_id = _linked_file_id(entry)
            if file_id is not None:
                found.append(_record(key, entry, file_id))
        return found

    def _save(self, records: list[UploadRecord]) -> None:
        with self._lock:
            document = self._load()
            uploads = document["uploads"]
            now = datetime.now(UTC).isoformat()
            for record in records:
                key = record.upload_id if record.upload_id in uploads else None
                key = key or _key_for(uploads, record.file_id, record.name) or record.file_id
                uploads[key] = _entry(uploads.get(key, {}), record, key)
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


def _changed(record: UploadRecord) -> float:
    stamp = record.updated_at or record.created_at
    return stamp.timestamp() if stamp else 0.0


def _linked_file_id(entry: Any) -> str | None:
    if not isinstance(entry, dict):
        return None
    data = entry.get("frameio_data")
    if isinstance(data, dict) and isinstance(data.get("file_id"), str):
        return str(data["file_id"])
    return None


def _key_for(uploads: Document, file_id: str, name: str | None) -> str | None:
    for key, entry in uploads.items():
        if _linked_file_id(entry) == file_id:
            return str(key)
    if not name:
        return None
    for key, entry in reversed(list(uploads.items())):
        linked = _linked_file_id(entry)
        if isinstance(entry, dict) and entry.get("filename") == name and linked is None:
            return str(key)
    return None


def _record(key: str, entry: Document, file_id: str) -> UploadRecord:
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
        processing, review = _FROM_LABEL[status]
    name = entry.get("filename")
    return UploadRecord(
        file_id=file_id,
        upload_id=key,
        name=name if isinstance(name, str) else None,
        processing=processing,
        review=review,
    )


def _entry(existing: Document, record: UploadRecord, key: str) -> Document:
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
