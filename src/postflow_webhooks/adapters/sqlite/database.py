"""``SqliteDatabase``: the one file (``postflow.sqlite3``), its writer and its reader.

Everything durable lives in this file: the deliveries and their counters, the
tracked files, the notification outbox, the destinations' state. The adapters
over it (``SqliteJournal``, ``SqliteRecords``, ``SqliteOutbox``) share one
group-commit writer, so a worker pass, a notification mark and a batch of
accepted deliveries never wait for each other's locks.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from postflow_webhooks.adapters.sqlite.connection import SqliteReader
from postflow_webhooks.adapters.sqlite.group_commit import GroupCommitWriter
from postflow_webhooks.adapters.sqlite.rows import stamp
from postflow_webhooks.domain.journal import IncomingDelivery

DATABASE_NAME = "postflow.sqlite3"

T = TypeVar("T")

_BUMP = (
    "INSERT INTO counters (kind, key, value) VALUES (?, ?, ?) "
    "ON CONFLICT (kind, key) DO UPDATE SET value = value + excluded.value"
)


def _commit_ingress(conn: sqlite3.Connection, items: list[Any]) -> list[None]:
    """One batch of the receiver's writes: accepted deliveries (counted) and refusals."""
    counts: Counter[tuple[str, str]] = Counter()
    deliveries = []
    for item in items:
        if isinstance(item, IncomingDelivery):
            deliveries.append(
                (
                    item.delivery_id,
                    stamp(item.received_at),
                    item.event_type,
                    item.file_id,
                    item.body,
                    item.signed,
                )
            )
            counts["total", ""] += 1
            counts["event_type", item.event_type] += 1
        else:
            counts["rejection", item] += 1
    conn.executemany(
        "INSERT INTO deliveries (delivery_id, received_at, event_type, file_id, body, signed) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        deliveries,
    )
    conn.executemany(_BUMP, [(kind, key, n) for (kind, key), n in counts.items()])
    return [None] * len(items)


class SqliteDatabase:
    """The database file: ``write`` and ``run`` go through the group commit, ``read`` to a thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.on_deliveries: Callable[[], None] | None = None
        self._writer = GroupCommitWriter(path, _commit_ingress, self._delivered)
        self._reader = SqliteReader(path)
        self._data_version: int | None = None

    @classmethod
    def in_directory(cls, data_dir: Path) -> SqliteDatabase:
        """The database of a data directory."""
        return cls(data_dir / DATABASE_NAME)

    def _delivered(self) -> None:
        if self.on_deliveries is not None:
            self.on_deliveries()

    def open(self) -> None:
        """Create or migrate the file and start the writer; ``StorageError`` if impossible."""
        self._writer.start()

    async def close(self) -> None:
        """Commit what is queued and close both connections."""
        await self._writer.stop()
        await self._reader.close()

    async def accept(self, item: IncomingDelivery | str) -> None:
        """Commit an accepted delivery, or count a refusal by its reason."""
        await self._writer.write(item)

    async def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` in the next group-committed transaction; its result once committed."""
        return await self._writer.run(fn)

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` on the read connection."""
        return await self._reader.run(fn)

    async def changed(self) -> bool:
        """True when a commit landed since the last call (``replay`` from another process, say)."""

        def version(conn: sqlite3.Connection) -> int:
            return int(conn.execute("PRAGMA data_version").fetchone()[0])

        seen, self._data_version = self._data_version, await self._reader.run(version)
        return seen is not None and seen != self._data_version
