"""``SqliteUploadStore``: tracked files in the ``uploads`` table of the same database."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

from postflow_webhooks.adapters.serialization import dump_record, load_record
from postflow_webhooks.adapters.sqlite.connection import SqliteThread, Transaction
from postflow_webhooks.domain.records import UploadRecord
from postflow_webhooks.domain.statuses import PostflowStatus

UploadRow = tuple[str, str | None, str | None, float, str]


def upload_rows(records: Sequence[UploadRecord]) -> list[UploadRow]:
    """Rows of the ``uploads`` table for these records."""
    return [
        (r.file_id, r.name, r.status.name if r.status else None, r.last_change, dump_record(r))
        for r in records
    ]


def upsert_upload_rows(conn: sqlite3.Connection, rows: Sequence[UploadRow]) -> None:
    """Create or replace rows of the ``uploads`` table (inside the caller's transaction)."""
    conn.executemany(
        "INSERT INTO uploads (file_id, name, status, updated_at, record) "
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT (file_id) DO UPDATE SET "
        "name = excluded.name, status = excluded.status, "
        "updated_at = excluded.updated_at, record = excluded.record",
        rows,
    )


class SqliteUploadStore:
    """The default upload store: one row per Frame.io file, the record as JSON."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = SqliteThread(path, "uploads")

    async def find(self, file_id: str, name: str | None = None) -> UploadRecord | None:
        """The record of ``file_id``.

        Every row here is linked to a Frame.io file, so ``name`` never finds another
        one: two files that share a name stay two records.
        """

        def query(conn: sqlite3.Connection) -> UploadRecord | None:
            row = conn.execute(
                "SELECT record FROM uploads WHERE file_id = ?", (file_id,)
            ).fetchone()
            return load_record(row[0]) if row else None

        return await self._db.run(query)

    async def find_many(self, keys: Sequence[tuple[str, str | None]]) -> dict[str, UploadRecord]:
        """The records of these file ids, in one query per 500 ids."""
        ids = list(dict.fromkeys(fid for fid, _ in keys))

        def query(conn: sqlite3.Connection) -> dict[str, UploadRecord]:
            found: dict[str, UploadRecord] = {}
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                marks = ",".join("?" * len(chunk))
                rows = conn.execute(
                    f"SELECT file_id, record FROM uploads WHERE file_id IN ({marks})", chunk
                )
                found.update((fid, load_record(text)) for fid, text in rows)
            return found

        return await self._db.run(query)

    async def save(self, records: Sequence[UploadRecord]) -> None:
        """Create or replace records in one transaction."""

        rows = upload_rows(records)

        def write(conn: sqlite3.Connection) -> None:
            with Transaction(conn):
                upsert_upload_rows(conn, rows)

        await self._db.run(write)

    async def list_records(
        self, *, status: PostflowStatus | None = None, offset: int = 0, limit: int = 50
    ) -> list[UploadRecord]:
        """Records, most recently changed first, optionally of one status."""

        def query(conn: sqlite3.Connection) -> list[UploadRecord]:
            if status is None:
                rows = conn.execute(
                    "SELECT record FROM uploads ORDER BY updated_at DESC, file_id DESC "
                    "LIMIT ? OFFSET ?",
                    (limit, offset),
                ).fetchall()
            else:
                rows = conn.execute(
                    "SELECT record FROM uploads WHERE status = ? "
                    "ORDER BY updated_at DESC, file_id DESC LIMIT ? OFFSET ?",
                    (status.name, limit, offset),
                ).fetchall()
            return [load_record(r[0]) for r in rows]

        return await self._db.run(query)

    async def count(self, *, status: PostflowStatus | None = None) -> int:
        """How many records, optionally of one status."""

        def query(conn: sqlite3.Connection) -> int:
            if status is None:
                row = conn.execute("SELECT count(*) FROM uploads").fetchone()
            else:
                row = conn.execute(
                    "SELECT count(*) FROM uploads WHERE status = ?", (status.name,)
                ).fetchone()
            return int(row[0])

        return await self._db.run(query)

    async def close(self) -> None:
        """Close the connection."""
        await self._db.close()
