"""``SqliteRecords``: the tracked files in the ``uploads`` table, and their changes in order.

Fits ``RecordStore`` (one row per Frame.io file, the record as JSON) and
``TrackerFeed`` (each change has a revision, so PostFlow's tracker can be
brought up to date from a mark).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence

from postflow_webhooks.adapters.serialization import load_record
from postflow_webhooks.adapters.sqlite.database import SqliteDatabase
from postflow_webhooks.adapters.sqlite.rows import record_rows
from postflow_webhooks.domain.records import UploadRecord, holds_comment
from postflow_webhooks.domain.statuses import PostflowStatus

_CHUNK = 500


class SqliteRecords:
    """The tracked files of one ``SqliteDatabase``."""

    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db

    async def find(self, file_id: str) -> UploadRecord | None:
        """The record of ``file_id``."""
        return (await self.find_many([file_id])).get(file_id)

    async def find_many(self, file_ids: Sequence[str]) -> dict[str, UploadRecord]:
        """The records of these file ids, in one query per 500 ids."""
        ids = list(dict.fromkeys(file_ids))

        def query(conn: sqlite3.Connection) -> dict[str, UploadRecord]:
            found: dict[str, UploadRecord] = {}
            for start in range(0, len(ids), _CHUNK):
                chunk = ids[start : start + _CHUNK]
                marks = ",".join("?" * len(chunk))
                rows = conn.execute(
                    f"SELECT file_id, record FROM uploads WHERE file_id IN ({marks})", chunk
                )
                found.update((fid, load_record(text)) for fid, text in rows)
            return found

        return await self._db.read(query)

    async def list_records(
        self, *, status: PostflowStatus | None = None, offset: int = 0, limit: int = 50
    ) -> list[UploadRecord]:
        """Records, most recently changed first, optionally of one status."""

        def query(conn: sqlite3.Connection) -> list[UploadRecord]:
            where, args = ("WHERE status = ?", [status.name]) if status else ("", [])
            rows = conn.execute(
                f"SELECT record FROM uploads {where} "
                "ORDER BY updated_at DESC, file_id DESC LIMIT ? OFFSET ?",
                (*args, limit, offset),
            ).fetchall()
            return [load_record(r[0]) for r in rows]

        return await self._db.read(query)

    async def count(self, *, status: PostflowStatus | None = None) -> int:
        """How many records, optionally of one status."""

        def query(conn: sqlite3.Connection) -> int:
            where, args = ("WHERE status = ?", [status.name]) if status else ("", [])
            return int(conn.execute(f"SELECT count(*) FROM uploads {where}", args).fetchone()[0])

        return await self._db.read(query)

    async def find_by_comment(self, comment_key: str) -> UploadRecord | None:
        """The record holding a comment, live or deleted (a scan: comment deletions are rare)."""
        needle = json.dumps(comment_key, ensure_ascii=False)

        def query(conn: sqlite3.Connection) -> UploadRecord | None:
            rows = conn.execute(
                "SELECT record FROM uploads WHERE instr(record, ?) > 0 ORDER BY updated_at DESC",
                (needle,),
            )
            for (text,) in rows:
                record = load_record(text)
                if holds_comment(record, comment_key):
                    return record
            return None

        return await self._db.read(query)

    async def adopt(self, records: Sequence[UploadRecord]) -> int:
        """Add records this database does not hold yet (from PostFlow's tracker); how many."""
        rows = record_rows(records)

        def write(conn: sqlite3.Connection) -> int:
            return sum(
                conn.execute(
                    "INSERT INTO uploads (file_id, name, status, updated_at, record) "
                    "VALUES (?, ?, ?, ?, ?) ON CONFLICT (file_id) DO NOTHING",
                    row,
                ).rowcount
                for row in rows
            )

        return await self._db.write(write)

    # -- TrackerFeed -----------------------------------------------------------

    async def changed_since(self, mark: int, limit: int) -> tuple[list[UploadRecord], int]:
        """Records changed after ``mark``, oldest change first, and the revision reached."""

        def query(conn: sqlite3.Connection) -> tuple[list[UploadRecord], int]:
            rows = conn.execute(
                "SELECT record, revision FROM uploads WHERE revision > ? ORDER BY revision LIMIT ?",
                (mark, limit),
            ).fetchall()
            reached = rows[-1][1] if rows else mark
            return [load_record(text) for text, _ in rows], int(reached)

        return await self._db.read(query)

    async def tracker_mark(self) -> int:
        """The last revision PostFlow's tracker holds."""

        def query(conn: sqlite3.Connection) -> int:
            row = conn.execute("SELECT value FROM meta WHERE key = 'tracker_mark'").fetchone()
            return int(row[0]) if row else 0

        return await self._db.read(query)

    async def set_tracker_mark(self, mark: int) -> None:
        """PostFlow's tracker now holds every change up to ``mark``."""

        def write(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO meta (key, value) VALUES ('tracker_mark', ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (str(mark),),
            )

        await self._db.write(write)
