"""What the JSON tracker file and PostFlow's live tracker have in common.

Both hold PostFlow upload entries (``tracker_format.py``). Reads are the same
whichever holds them; subclasses say where the entries are (``_uploads``) and
how a batch of records is written (``_save``). Every call runs on one
dedicated thread, one at a time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from postflow_webhooks.adapters.listing import newest_first, of_status
from postflow_webhooks.adapters.tracker_format import (
    Document,
    entry_key,
    entry_record,
    linked_file_id,
)
from postflow_webhooks.domain.records import UploadRecord
from postflow_webhooks.domain.statuses import PostflowStatus


class EntryStore:
    """An upload store over PostFlow upload entries; subclasses supply and write them."""

    def __init__(self, thread_name: str) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=thread_name)

    def _uploads(self) -> Document:
        """The upload entries by key (read fresh)."""
        raise NotImplementedError

    def _save(self, records: list[UploadRecord]) -> None:
        """Write the records (on the store's thread)."""
        raise NotImplementedError

    async def _run(self, fn: Any, *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, fn, *args)

    async def find(self, file_id: str, name: str | None = None) -> UploadRecord | None:
        """The upload linked to ``file_id``, else an unlinked one named ``name``."""
        found = await self.find_many([(file_id, name)])
        return found.get(file_id)

    async def find_many(self, keys: Sequence[tuple[str, str | None]]) -> dict[str, UploadRecord]:
        """``find`` for each (file id, name) pair, reading the entries once."""
        found: dict[str, UploadRecord] = await self._run(self._find_many, list(keys))
        return found

    async def save(self, records: Sequence[UploadRecord]) -> None:
        """Write the records."""
        await self._run(self._save, list(records))

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

    async def close(self) -> None:
        """Stop the store's thread."""
        self._pool.shutdown(wait=True)

    def _find_many(self, keys: list[tuple[str, str | None]]) -> dict[str, UploadRecord]:
        uploads = self._uploads()
        found = {}
        for file_id, name in keys:
            key = entry_key(uploads, file_id, name)
            if key is not None:
                found[file_id] = entry_record(key, uploads[key], file_id)
        return found

    def _all(self) -> list[UploadRecord]:
        found = []
        for key, entry in list(self._uploads().items()):
            file_id = linked_file_id(entry)
            if file_id is not None:
                found.append(entry_record(str(key), entry, file_id))
        return found
