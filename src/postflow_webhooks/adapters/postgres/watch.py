"""``PostgresWatch``: the reads behind the status page, ``/health`` and ``/metrics``.

The same figures as ``SqliteWatch``, from the shared database, so every
receiver shows the same backlog, deferred deliveries, files and totals. Each
query uses an index: the partial ones on pending deliveries, ``uploads_by_status``
and ``uploads_by_revision``. ``check_writable`` commits a one-row write, so a
database that takes no commits shows before a delivery is refused.
"""

from __future__ import annotations

from datetime import datetime

from postflow_webhooks.adapters.postgres.database import Conn, PostgresDatabase
from postflow_webhooks.adapters.serialization import load_record
from postflow_webhooks.adapters.sql import file_filter
from postflow_webhooks.domain.journal import StoreReading
from postflow_webhooks.domain.records import UploadRecord
from postflow_webhooks.domain.statuses import PostflowStatus

_READING = """
SELECT (SELECT received_at FROM deliveries WHERE state = 'pending' ORDER BY seq LIMIT 1),
       (SELECT count(*) FROM deliveries WHERE state = 'pending' AND not_before IS NOT NULL),
       (SELECT min(received_at) FROM deliveries
         WHERE state = 'pending' AND not_before IS NOT NULL),
       (SELECT last_error FROM deliveries WHERE state = 'pending' AND not_before IS NOT NULL
         ORDER BY seq DESC LIMIT 1)
"""


async def _reading(conn: Conn, files: bool) -> StoreReading:
    cur = await conn.execute(_READING)
    row = await cur.fetchone()
    assert row is not None
    oldest, deferred, oldest_deferred, reason = row
    by_status: dict[str, int] = {}
    revision = 0
    if files:  # a scan of the status index: only when the page or /metrics shows it
        cur = await conn.execute("SELECT status, count(*) FROM uploads GROUP BY status")
        by_status = {status or "": int(count) for status, count in await cur.fetchall()}
        cur = await conn.execute("SELECT coalesce(max(revision), 0) FROM uploads")
        found = await cur.fetchone()
        revision = int(found[0]) if found else 0
    cur = await conn.execute("SELECT key, value FROM counters WHERE kind = 'notification'")
    notes = {key: int(value) for key, value in await cur.fetchall()}
    return StoreReading(
        oldest_pending_at=oldest,
        deferred=int(deferred),
        oldest_deferred_at=oldest_deferred,
        deferred_reason=reason,
        files_by_status=by_status,
        revision=revision,
        notifications_sent_total=notes.get("sent", 0),
        notifications_dead_total=notes.get("dead", 0),
    )


class PostgresWatch:
    """Read-only figures of one ``PostgresDatabase``, plus a write probe."""

    def __init__(self, db: PostgresDatabase) -> None:
        self._db = db

    async def reading(self, *, files: bool = True) -> StoreReading:
        """The backlog's age, the deferred deliveries, the totals; the files by status if asked."""
        return await self._db.read(lambda conn: _reading(conn, files))

    async def browse(
        self,
        *,
        status: PostflowStatus | None = None,
        search: str | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> tuple[list[UploadRecord], int, int]:
        """A page of tracked files, newest change first, how many match, and the revision read."""
        # SQLite's LIKE folds ASCII case; ILIKE does the same here.
        where, args = file_filter(status, search, param="%s", like="ILIKE %s")

        async def query(conn: Conn) -> tuple[list[UploadRecord], int, int]:
            async with conn.transaction():  # one snapshot: the page, its count and its revision
                await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                cur = await conn.execute("SELECT coalesce(max(revision), 0) FROM uploads")
                found = await cur.fetchone()
                cur = await conn.execute(
                    f"SELECT record FROM uploads {where} "
                    'ORDER BY updated_at DESC, file_id COLLATE "C" DESC LIMIT %s OFFSET %s',
                    (*args, limit, offset),
                )
                records = [load_record(r[0]) for r in await cur.fetchall()]
                cur = await conn.execute(f"SELECT count(*) FROM uploads {where}", args)
                total = await cur.fetchone()
            revision = int(found[0]) if found else 0
            return records, int(total[0]) if total else 0, revision

        return await self._db.read(query)

    async def check_writable(self, now: datetime) -> None:
        """Commit a tiny write; ``StorageError`` when the database cannot be written."""

        async def write(conn: Conn) -> None:
            await conn.execute(
                "INSERT INTO meta (key, value) VALUES ('writable_at', %s) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (str(now.timestamp()),),
            )

        await self._db.write(write)
