"""``SqliteInbox``: accepted deliveries, on disk before the answer, in a file of their own.

Only the receiver writes the inbox (through its group-commit writer), so no
other process ever holds the lock an answer waits for. The worker reads new
rows from it and copies them, by sequence number, into the state database,
where it tracks them (``journal.py``); copied rows are pruned from here.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

from postflow_webhooks.adapters.sqlite.connection import SqliteThread, open_database
from postflow_webhooks.adapters.sqlite.group_commit import GroupCommitWriter
from postflow_webhooks.adapters.sqlite.schema import INBOX_SCHEMA
from postflow_webhooks.adapters.sqlite.times import stamp
from postflow_webhooks.domain.journal import IncomingDelivery

# Columns copied to the state database, in this order.
INBOX_COLUMNS = "seq, delivery_id, received_at, event_type, file_id, body, signed"
PRUNE_CHUNK = 5000

_BUMP = (
    "INSERT INTO counters (kind, key, value) VALUES (?, ?, ?) "
    "ON CONFLICT (kind, key) DO UPDATE SET value = value + excluded.value"
)


def inbox_path(state_path: Path) -> Path:
    """The inbox file next to the state database (``postflow.sqlite3`` → ``postflow-inbox…``)."""
    return state_path.with_name(f"{state_path.stem}-inbox{state_path.suffix}")


def _commit_ingress(conn: sqlite3.Connection, items: list[Any]) -> list[None]:
    """One batch of the receiver's writes: deliveries (and their counts), rejections."""
    deliveries = [item for item in items if isinstance(item, IncomingDelivery)]
    counts: Counter[tuple[str, str]] = Counter()
    for item in items:
        if isinstance(item, IncomingDelivery):
            counts["total", ""] += 1
            counts["event_type", item.event_type] += 1
        else:
            counts["rejection", item] += 1
    conn.executemany(
        "INSERT INTO deliveries (delivery_id, received_at, event_type, file_id, body, signed) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        [
            (d.delivery_id, stamp(d.received_at), d.event_type, d.file_id, d.body, d.signed)
            for d in deliveries
        ],
    )
    conn.executemany(_BUMP, [(kind, key, n) for (kind, key), n in counts.items()])
    return [None] * len(items)


class SqliteInbox:
    """The inbox file: the receiver appends; the worker reads, counts and prunes."""

    def __init__(self, state_path: Path, on_commit: Any = None) -> None:
        self.path = inbox_path(state_path)
        self._state_path = state_path
        self._writer = GroupCommitWriter(self.path, _commit_ingress, on_commit, schema=INBOX_SCHEMA)
        self._db = SqliteThread(self.path, "inbox", schema=INBOX_SCHEMA)

    def open(self) -> None:
        """Create the file and start the writer; numbering continues the state database's."""
        self._writer.start()
        _continue_numbering(self.path, self._state_path)

    async def close(self) -> None:
        """Commit what is queued and close both connections."""
        await self._writer.stop()
        await self._db.close()

    async def append(self, delivery: IncomingDelivery) -> None:
        """Commit a delivery and count it; returns once it is on disk."""
        await self._writer.write(delivery)

    async def reject(self, reason: str) -> None:
        """Count a refused request by reason."""
        await self._writer.write(reason)

    async def after(self, seq: int, limit: int) -> list[tuple[Any, ...]]:
        """Up to ``limit`` rows numbered above ``seq``, in order (``INBOX_COLUMNS``)."""

        def query(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
            return conn.execute(
                f"SELECT {INBOX_COLUMNS} FROM deliveries WHERE seq > ? ORDER BY seq LIMIT ?",
                (seq, limit),
            ).fetchall()

        return await self._db.run(query)

    async def waiting(self, seq: int) -> int:
        """How many rows are numbered above ``seq`` (accepted, not yet copied)."""

        def query(conn: sqlite3.Connection) -> int:
            row = conn.execute("SELECT count(*) FROM deliveries WHERE seq > ?", (seq,)).fetchone()
            return int(row[0])

        return await self._db.run(query)

    async def counters(self) -> list[tuple[str, str, int]]:
        """The receiver's counters: (kind, key, value)."""

        def query(conn: sqlite3.Connection) -> list[tuple[str, str, int]]:
            return conn.execute("SELECT kind, key, value FROM counters").fetchall()

        return await self._db.run(query)

    async def prune(self, up_to: int) -> int:
        """Delete rows numbered up to ``up_to`` (already copied), a chunk per transaction."""

        def delete(conn: sqlite3.Connection) -> int:
            gone = 0
            while True:
                count = conn.execute(
                    "DELETE FROM deliveries WHERE seq IN "
                    "(SELECT seq FROM deliveries WHERE seq <= ? ORDER BY seq LIMIT ?)",
                    (up_to, PRUNE_CHUNK),
                ).rowcount
                gone += count
                if count < PRUNE_CHUNK:
                    return gone

        return await self._db.run(delete)


def _continue_numbering(inbox: Path, state: Path) -> None:
    """Never reuse a number the state database already holds (it predates the inbox)."""
    state_conn = open_database(state)
    try:
        row = state_conn.execute(
            "SELECT seq FROM sqlite_sequence WHERE name = 'deliveries'"
        ).fetchone()
    finally:
        state_conn.close()
    if row is None:
        return
    conn = open_database(inbox, schema=INBOX_SCHEMA)
    try:
        current = conn.execute(
            "SELECT seq FROM sqlite_sequence WHERE name = 'deliveries'"
        ).fetchone()
        if current is None:
            conn.execute(
                "INSERT INTO sqlite_sequence (name, seq) VALUES ('deliveries', ?)", (row[0],)
            )
        elif current[0] < row[0]:
            conn.execute("UPDATE sqlite_sequence SET seq = ? WHERE name = 'deliveries'", (row[0],))
    finally:
        conn.close()
