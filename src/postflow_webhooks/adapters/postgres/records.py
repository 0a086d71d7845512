"""``PostgresRecords``: the tracked files in ``uploads``, and their changes in order.

Fits ``RecordStore`` and ``TrackerFeed`` like ``SqliteRecords``. Each write of a
record takes the next value of the ``uploads_revision`` sequence; only the
worker-role holder writes records, so revisions follow commit order.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime

from postflow_webhooks.adapters.postgres.database import Conn, PostgresDatabase
from postflow_webhooks.adapters.serialization import dump_record, load_record
from postflow_webhooks.domain.records import UploadRecord, holds_comment
from postflow_webhooks.domain.statuses import PostflowStatus

_UPSERT = (
    "INSERT INTO uploads (file_id, name, status, updated_at, record, revision) "
    "VALUES (%s, %s, %s, %s, %s, nextval('uploads_revision')) ON CONFLICT (file_id) DO UPDATE SET "
    "name = excluded.name, status = excluded.status, updated_at = excluded.updated_at, "
    "record = excluded.record, revision = excluded.revision"
)


def _row(r: UploadRecord) -> tuple[str, str | None, str | None, datetime, str]:
    return (
        r.file_id,
        r.name,
        r.status.name if r.status else None,
        datetime.fromtimestamp(r.last_change, UTC),
        dump_record(r),
    )


async def upsert_records(conn: Conn, records: Sequence[UploadRecord]) -> None:
    """Create or replace records, each with the next revision (in the caller's transaction)."""
    if records:
        async with conn.cursor() as cur:
            await cur.executemany(_UPSERT, [_row(r) for r in records])


class PostgresRecords:
    """The tracked files of one ``PostgresDatabase``."""

    def __init__(self, db: PostgresDatabase) -> None:
        self._db = db

    async def find(self, file_id: str) -> UploadRecord | None:
        """The record of ``file_id``."""
        return (await self.find_many([file_id])).get(file_id)

    async def find_many(self, file_ids: Sequence[str]) -> dict[str, UploadRecord]:
        """The records of these file ids, in one query (keyed by the record's own file id)."""
        ids = list(dict.fromkeys(file_ids))
        wanted = set(ids)

        async def query(conn: Conn) -> dict[str, UploadRecord]:
            cur = await conn.execute("SELECT record FROM uploads WHERE file_id = ANY(%s)", (ids,))
            records = [load_record(text) for (text,) in await cur.fetchall()]
            return {r.file_id: r for r in records if r.file_id in wanted}

        return await self._db.read(query)

    async def find_by_comment(self, comment_key: str) -> UploadRecord | None:
        """The record holding a comment, live or deleted (a scan: comment deletions are rare)."""
        needle = json.dumps(comment_key, ensure_ascii=False)

        async def query(conn: Conn) -> UploadRecord | None:
            cur = await conn.execute(
                "SELECT record FROM uploads WHERE strpos(record, %s) > 0 ORDER BY updated_at DESC",
                (needle,),
            )
            async for (text,) in cur:
                record = load_record(text)
                if holds_comment(record, comment_key):
                    return record
            return None

        return await self._db.read(query)

    async def list_records(
        self, *, status: PostflowStatus | None = None, offset: int = 0, limit: int = 50
    ) -> list[UploadRecord]:
        """Records, most recently changed first, optionally of one status."""

        async def query(conn: Conn) -> list[UploadRecord]:
            where, args = ("WHERE status = %s", [status.name]) if status else ("", [])
            cur = await conn.execute(
                f"SELECT record FROM uploads {where} "
                'ORDER BY updated_at DESC, file_id COLLATE "C" DESC LIMIT %s OFFSET %s',
                (*args, limit, offset),
            )
            return [load_record(r[0]) for r in await cur.fetchall()]

        return await self._db.read(query)

    async def count(self, *, status: PostflowStatus | None = None) -> int:
        """How many records, optionally of one status."""

        async def query(conn: Conn) -> int:
            where, args = ("WHERE status = %s", [status.name]) if status else ("", [])
            cur = await conn.execute(f"SELECT count(*) FROM uploads {where}", args)
            row = await cur.fetchone()
            return int(row[0]) if row else 0

        return await self._db.read(query)

    async def adopt(self, records: Sequence[UploadRecord]) -> int:
        """Add records this database does not hold yet (from PostFlow's tracker); how many."""
        rows = [_row(r) for r in records]

        async def write(conn: Conn) -> int:
            added = 0
            async with conn.cursor() as cur:
                for row in rows:
                    await cur.execute(
                        "INSERT INTO uploads (file_id, name, status, updated_at, record) "
                        "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (file_id) DO NOTHING",
                        row,
                    )
                    added += cur.rowcount
            return added

        return await self._db.write(write)

    # -- TrackerFeed -----------------------------------------------------------

    async def changed_since(self, mark: int, limit: int) -> tuple[list[UploadRecord], int]:
        """Records changed after ``mark``, oldest change first, and the revision reached."""

        async def query(conn: Conn) -> tuple[list[UploadRecord], int]:
            cur = await conn.execute(
                "SELECT record, revision FROM uploads WHERE revision > %s "
                "ORDER BY revision LIMIT %s",
                (mark, limit),
            )
            rows = await cur.fetchall()
            reached = rows[-1][1] if rows else mark
            return [load_record(text) for text, _ in rows], int(reached)

        return await self._db.read(query)

    async def tracker_mark(self) -> int:
        """The last revision PostFlow's tracker holds."""

        async def query(conn: Conn) -> int:
            cur = await conn.execute("SELECT value FROM meta WHERE key = 'tracker_mark'")
            row = await cur.fetchone()
            return int(row[0]) if row else 0

        return await self._db.read(query)

    async def set_tracker_mark(self, mark: int) -> None:
        """PostFlow's tracker now holds every change up to ``mark``."""

        async def write(conn: Conn) -> None:
            await conn.execute(
                "INSERT INTO meta (key, value) VALUES ('tracker_mark', %s) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (str(mark),),
            )

        await self._db.write(write)
