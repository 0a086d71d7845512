"""``SqliteDatabase``: the one file (``postflow.sqlite3``), its writer and its reader.

Everything durable lives in this file: the deliveries and their counters, the
tracked files, the notification outbox, the destinations' state. The adapters
over it (``SqliteJournal``, ``SqliteRecords``, ``SqliteOutbox``) share one
group-commit writer, so a worker pass, a notification mark and a batch of
accepted deliveries never wait for each other's locks.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from postflow_webhooks.adapters.sql import sort_ingress
from postflow_webhooks.adapters.sqlite.connection import SqliteReader
from postflow_webhooks.adapters.sqlite.group_commit import GroupCommitWriter
from postflow_webhooks.adapters.sqlite.rows import stamp
from postflow_webhooks.domain.endpoint import MAX_SKEW_SECONDS
from postflow_webhooks.domain.errors import StorageError
from postflow_webhooks.domain.journal import CommitFailure, IncomingDelivery

DATABASE_NAME = "postflow.sqlite3"

T = TypeVar("T")

_BUMP = (
    "INSERT INTO counters (kind, key, value) VALUES (?, ?, ?) "
    "ON CONFLICT (kind, key) DO UPDATE SET value = value + excluded.value"
)
_REMEMBER = (
    "INSERT INTO accepted_signatures (timestamp, signature, delivery_id) VALUES (?, ?, ?) "
    "ON CONFLICT DO NOTHING"
)
_FIRST = "SELECT delivery_id FROM accepted_signatures WHERE timestamp = ? AND signature = ?"

# How often accepted signatures older than the window are forgotten.
PRUNE_SIGNATURES_EVERY = 30.0


def _replays(conn: sqlite3.Connection, items: list[Any]) -> dict[str, str]:
    """Remember the signed deliveries of a batch; the replays among them, by id, to the first's."""
    signed = [
        (item.timestamp, item.signature, item.delivery_id)
        for item in items
        if isinstance(item, IncomingDelivery) and item.signature is not None
    ]
    if not signed:
        return {}
    before = conn.total_changes
    conn.executemany(_REMEMBER, signed)
    if conn.total_changes - before == len(signed):
        return {}
    replays = {}
    for timestamp, signature, delivery_id in signed:
        (first,) = conn.execute(_FIRST, (timestamp, signature)).fetchone()
        if first != delivery_id:
            replays[delivery_id] = first
    return replays


def _commit_ingress(conn: sqlite3.Connection, items: list[Any]) -> list[str | None]:
    """One batch of the receiver's writes: accepted deliveries (counted) and refusals.

    A signed delivery whose (signature, timestamp) was accepted before is a
    replay: it is not stored, and its result is the first one's delivery id.
    """
    batch = sort_ingress(items, _replays(conn, items))
    deliveries = [
        (d.delivery_id, stamp(d.received_at), d.event_type, d.file_id, d.body, d.signed)
        for d in batch.stored
    ]
    conn.executemany(
        "INSERT INTO deliveries (delivery_id, received_at, event_type, file_id, body, signed) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        deliveries,
    )
    conn.executemany(_BUMP, [(kind, key, n) for (kind, key), n in batch.counts.items()])
    return batch.results


class SqliteDatabase:
    """The database file: ``write`` and ``run`` go through the group commit, ``read`` to a thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.on_deliveries: Callable[[], None] | None = None
        self._writer = GroupCommitWriter(path, self._commit_ingress, self._delivered)
        self._pruned_at = 0.0
        self._reader = SqliteReader(path)
        self._data_version: int | None = None

    @classmethod
    def in_directory(cls, data_dir: Path) -> SqliteDatabase:
        """The database of a data directory."""
        return cls(data_dir / DATABASE_NAME)

    def _commit_ingress(self, conn: sqlite3.Connection, items: list[Any]) -> list[str | None]:
        """The receiver's batch; every 30 s (of receipt times), forget signatures past the window."""
        results = _commit_ingress(conn, items)
        received = [i.received_at.timestamp() for i in items if isinstance(i, IncomingDelivery)]
        if received and max(received) - self._pruned_at >= PRUNE_SIGNATURES_EVERY:
            self._pruned_at = max(received)
            horizon = int(self._pruned_at) - MAX_SKEW_SECONDS - 1
            conn.execute("DELETE FROM accepted_signatures WHERE timestamp < ?", (horizon,))
        return results

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

    async def accept(self, item: IncomingDelivery | str) -> str | None:
        """Commit an accepted delivery (or count a refusal by its reason).

        Returns the first delivery's id when ``item`` replays a signed delivery
        already accepted; ``None`` otherwise.
        """
        result: str | None = await self._writer.write(item)
        return result

    def commit_failure(self) -> CommitFailure | None:
        """Why the last commit failed (disk full, locked, ...); ``None`` once one succeeds."""
        return self._writer.commit_failure()

    async def recheck(self) -> None:
        """While commits fail, commit a probe as large as the failed commit, then delete it.

        Health follows the cause going away (``health.py``), traffic or not.
        """
        if self._writer.commit_failure() is None:
            return
        self._writer.reopen_if_read_only()
        size = self._writer.probe_size

        def probe(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO meta (key, value) VALUES ('commit_probe', randomblob(?)) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (size,),
            )

        def forget(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM meta WHERE key = 'commit_probe'")

        with contextlib.suppress(StorageError):
            await self._writer.run(probe, size)
            await self._writer.run(forget)

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
