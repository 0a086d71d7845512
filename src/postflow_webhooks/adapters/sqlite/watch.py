"""``SqliteWatch``: the reads behind the status page, ``/health`` and ``/metrics``.

Every query here is cheap on a large database: the oldest pending delivery
and the deferred ones come from the partial indexes on pending deliveries,
the counts by status from ``uploads_by_status``, the latest revision from
``uploads_by_revision``. ``browse`` pages the tracked files for the page,
filtered by status and by a piece of the name or id, in one read (so the
revision it reports is the one the page shows). ``check_writable``
commits a one-row write, so a full disk or a read-only file shows before a
delivery is refused.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime

from postflow_webhooks.adapters.serialization import load_record
from postflow_webhooks.adapters.sql import file_filter
from postflow_webhooks.adapters.sqlite.database import SqliteDatabase
from postflow_webhooks.adapters.sqlite.rows import optional_moment, stamp
from postflow_webhooks.domain.journal import StoreReading
from postflow_webhooks.domain.records import UploadRecord
from postflow_webhooks.domain.statuses import PostflowStatus


def _reading(conn: sqlite3.Connection, files: bool = True) -> StoreReading:
    oldest = conn.execute(
        "SELECT received_at FROM deliveries WHERE state = 'pending' ORDER BY seq LIMIT 1"
    ).fetchone()
    deferred = conn.execute(
        "SELECT count(*), min(received_at) FROM deliveries "
        "WHERE state = 'pending' AND not_before IS NOT NULL"
    ).fetchone()
    reason = conn.execute(
        "SELECT last_error FROM deliveries WHERE state = 'pending' AND not_before IS NOT NULL "
        "ORDER BY seq DESC LIMIT 1"
    ).fetchone()
    by_status: dict[str, int] = {}
    revision = 0
    if files:  # a scan of the status index: a few ms with 100,000 files, so only when shown
        rows = conn.execute("SELECT status, count(*) FROM uploads GROUP BY status").fetchall()
        by_status = {status or "": count for status, count in rows}
        revision = conn.execute("SELECT coalesce(max(revision), 0) FROM uploads").fetchone()[0]
    notes = dict(
        conn.execute("SELECT key, value FROM counters WHERE kind = 'notification'").fetchall()
    )
    return StoreReading(
        oldest_pending_at=optional_moment(oldest[0]) if oldest else None,
        deferred=int(deferred[0]),
        oldest_deferred_at=optional_moment(deferred[1]),
        deferred_reason=reason[0] if reason else None,
        files_by_status=by_status,
        revision=int(revision),
        notifications_sent_total=int(notes.get("sent", 0)),
        notifications_dead_total=int(notes.get("dead", 0)),
    )


class SqliteWatch:
    """Read-only figures of one ``SqliteDatabase``, plus a write probe."""

    def __init__(self, db: SqliteDatabase) -> None:
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
        where, args = file_filter(status, search, param="?", like="LIKE ? ESCAPE '\\'")

        def query(conn: sqlite3.Connection) -> tuple[list[UploadRecord], int, int]:
            revision = conn.execute("SELECT coalesce(max(revision), 0) FROM uploads").fetchone()
            rows = conn.execute(
                f"SELECT record FROM uploads {where} "
                "ORDER BY updated_at DESC, file_id DESC LIMIT ? OFFSET ?",
                (*args, limit, offset),
            ).fetchall()
            total = conn.execute(f"SELECT count(*) FROM uploads {where}", args).fetchone()[0]
            return [load_record(r[0]) for r in rows], int(total), int(revision[0])

        return await self._db.read(query)

    async def check_writable(self, now: datetime) -> None:
        """Commit a tiny write; ``StorageError`` when the database cannot be written."""

        def write(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO meta (key, value) VALUES ('writable_at', ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (str(stamp(now)),),
            )

        await self._db.write(write)
