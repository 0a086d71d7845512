"""``SqliteJournal``: deliveries, stats, the notification outbox and pending tracker writes.

Accepted deliveries go to the inbox (``inbox.py``), a file only the receiver
writes. The worker copies them into this state database as it takes them
(``pending``), in the same order, and tracks them here: processed, deferred,
quarantined. Writes go through a group-commit writer (``group_commit.py``);
reads run on a second connection on its own thread. Both files are in WAL mode.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from postflow_webhooks.adapters.serialization import (
    dump_notification,
    dump_record,
    from_plain,
    load_record,
    to_plain,
)
from postflow_webhooks.adapters.sqlite.connection import SqliteThread
from postflow_webhooks.adapters.sqlite.group_commit import GroupCommitWriter
from postflow_webhooks.adapters.sqlite.inbox import INBOX_COLUMNS, SqliteInbox
from postflow_webhooks.adapters.sqlite.outbox import SqliteOutbox
from postflow_webhooks.adapters.sqlite.store import upload_rows, upsert_upload_rows
from postflow_webhooks.adapters.sqlite.times import moment as _at
from postflow_webhooks.adapters.sqlite.times import optional_moment as _dt
from postflow_webhooks.adapters.sqlite.times import stamp as _ts
from postflow_webhooks.domain.journal import (
    BatchResult,
    IncomingDelivery,
    JournalStats,
    LastEvent,
    PendingDelivery,
    QuarantinedDelivery,
)
from postflow_webhooks.domain.records import UploadRecord

DATABASE_NAME = "postflow.sqlite3"

_PENDING_COLUMNS = (
    "seq, delivery_id, received_at, body, event_type, file_id, attempts, not_before, last_error"
)

_DUE = f"""
SELECT {_PENDING_COLUMNS}
FROM deliveries AS d
WHERE d.state = 'pending'
  AND (d.not_before IS NULL OR d.not_before <= :now)
  AND NOT EXISTS (
      SELECT 1 FROM deliveries AS e
      WHERE e.file_id = d.file_id AND e.state = 'pending'
        AND e.not_before IS NOT NULL AND e.seq < d.seq AND e.not_before > :now)
ORDER BY d.seq
LIMIT :limit
"""


def _no_items(conn: sqlite3.Connection, items: list[Any]) -> list[None]:
    """The state writer takes only queued functions; it has no data items of its own."""
    return [None] * len(items)


def _inbox_mark(conn: sqlite3.Connection) -> int:
    """The number of the last inbox row copied here.

    Before the first copy: the last number this file gave out itself (a
    database from before the inbox), else 0.
    """
    row = conn.execute("SELECT value FROM meta WHERE key = 'inbox_seq'").fetchone()
    if row is not None:
        return int(row[0])
    row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'deliveries'").fetchone()
    return int(row[0]) if row is not None else 0


def _pending(row: tuple[Any, ...]) -> PendingDelivery:
    return PendingDelivery(
        seq=row[0],
        delivery_id=row[1],
        received_at=_at(row[2]),
        body=bytes(row[3]),
        event_type=row[4],
        file_id=row[5],
        attempts=row[6],
        not_before=_dt(row[7]),
        last_error=row[8],
    )


class SqliteJournal(SqliteOutbox):
    """The durable journal: ``DeliveryInbox``, ``DeliveryQueue`` and ``NotificationOutbox``.

    With ``owns_uploads`` the journal writes records straight into the
    ``uploads`` table of the same file, in the pass's own transaction, so a
    ``SqliteUploadStore`` on that file needs no separate write.
    """

    def __init__(
        self,
        path: Path,
        on_commit: Callable[[], None] | None = None,
        *,
        owns_uploads: bool = False,
    ) -> None:
        self.path = path
        self.commits_records = owns_uploads
        self._writer = GroupCommitWriter(path, _no_items)
        self._db = SqliteThread(path, "journal")
        self._inbox = SqliteInbox(path, on_commit)

    def open(self) -> None:
        """Create both files and schemas and start the writers; ``StorageError`` if impossible."""
        self._writer.start()
        self._inbox.open()

    async def close(self) -> None:
        """Commit what is queued and close both connections."""
        await self._inbox.close()
        await self._writer.stop()
        await self._db.close()

    # -- DeliveryInbox -------------------------------------------------------

    async def append(self, delivery: IncomingDelivery) -> None:
        """Commit a delivery to the inbox and count it; returns once it is on disk."""
        await self._inbox.append(delivery)

    async def reject(self, reason: str) -> None:
        """Count a refused request by reason."""
        await self._inbox.reject(reason)

    # -- DeliveryQueue -------------------------------------------------------

    async def pending(self, limit: int, now: datetime) -> list[PendingDelivery]:
        """Due deliveries in order; a file waiting on a deferred delivery is held back.

        New deliveries are first copied from the inbox, up to ``limit`` of them.
        """
        await self._take_from_inbox(limit)

        def query(conn: sqlite3.Connection) -> list[PendingDelivery]:
            rows = conn.execute(_DUE, {"now": _ts(now), "limit": limit}).fetchall()
            return [_pending(r) for r in rows]

        return await self._db.run(query)

    async def _take_from_inbox(self, limit: int) -> None:
        """Copy inbox rows numbered past this database's mark, and move the mark, atomically."""
        rows = await self._inbox.after(await self._db.run(_inbox_mark), limit)
        if not rows:
            return

        def copy(conn: sqlite3.Connection) -> None:
            mark = _inbox_mark(conn)  # re-read inside the transaction: never copy twice
            fresh = [row for row in rows if row[0] > mark]
            if not fresh:
                return
            conn.executemany(
                f"INSERT INTO deliveries ({INBOX_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)", fresh
            )
            conn.execute(
                "INSERT INTO meta (key, value) VALUES ('inbox_seq', ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (str(fresh[-1][0]),),
            )

        await self._writer.run(copy)

    async def deferred(self, limit: int = 100) -> list[PendingDelivery]:
        """Deliveries waiting for a retry (enrichment failed), oldest first."""

        def query(conn: sqlite3.Connection) -> list[PendingDelivery]:
            rows = conn.execute(
                f"SELECT {_PENDING_COLUMNS} FROM deliveries "
                "WHERE state = 'pending' AND not_before IS NOT NULL ORDER BY seq LIMIT ?",
                (limit,),
            ).fetchall()
            return [_pending(r) for r in rows]

        return await self._db.run(query)

    async def commit(self, result: BatchResult) -> None:
        """One transaction: marks, deferrals, quarantine, records, notifications, last event."""
        now = _ts(result.at) if result.at else None

        def serialise(_: sqlite3.Connection) -> tuple[list[Any], list[Any], str | None]:
            records = upload_rows(result.records)
            notes = [(n.file_id, dump_notification(n), _ts(n.at)) for n in result.notifications]
            last = json.dumps(to_plain(result.last_event)) if result.last_event else None
            return records, notes, last

        # Serialising happens on the reader thread, so the writer only writes.
        records, notes, last = await self._db.run(serialise)

        def write(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "UPDATE deliveries SET state = 'processed', processed_at = ? WHERE seq = ?",
                [(now, seq) for seq in result.processed],
            )
            conn.executemany(
                "UPDATE deliveries SET attempts = attempts + 1, not_before = ?, "
                "last_error = ? WHERE seq = ?",
                [(_ts(d.not_before), d.reason, d.seq) for d in result.deferred],
            )
            conn.executemany(
                "UPDATE deliveries SET state = 'quarantined', last_error = ? WHERE seq = ?",
                [(q.reason, q.seq) for q in result.quarantined],
            )
            if self.commits_records:
                upsert_upload_rows(conn, records)
            else:
                conn.executemany(
                    "INSERT INTO tracker_writes (file_id, record) VALUES (?, ?) "
                    "ON CONFLICT (file_id) DO UPDATE SET record = excluded.record",
                    [(row[0], row[4]) for row in records],
                )
            conn.executemany(
                "INSERT INTO notifications (file_id, body, created_at) VALUES (?, ?, ?)", notes
            )
            if last is not None:
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('last_event', ?) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (last,),
                )

        await self._writer.run(write)

    async def tracker_writes(self) -> list[UploadRecord]:
        """Records committed here and not yet confirmed written to the store."""

        def query(conn: sqlite3.Connection) -> list[UploadRecord]:
            rows = conn.execute("SELECT record FROM tracker_writes ORDER BY file_id").fetchall()
            return [load_record(r[0]) for r in rows]

        return await self._db.run(query)

    async def clear_tracker_writes(self, records: Sequence[UploadRecord]) -> None:
        """Forget writes the store took, unless a newer record replaced them since."""

        def write(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "DELETE FROM tracker_writes WHERE file_id = ? AND record = ?",
                [(r.file_id, dump_record(r)) for r in records],
            )

        await self._writer.run(write)

    async def quarantined(self, limit: int = 100) -> list[QuarantinedDelivery]:
        """Quarantined deliveries, oldest first."""

        def query(conn: sqlite3.Connection) -> list[QuarantinedDelivery]:
            rows = conn.execute(
                "SELECT seq, delivery_id, received_at, event_type, last_error, body "
                "FROM deliveries WHERE state = 'quarantined' ORDER BY seq LIMIT ?",
                (limit,),
            ).fetchall()
            return [
                QuarantinedDelivery(r[0], r[1], _at(r[2]), r[3], r[4] or "", bytes(r[5]))
                for r in rows
            ]

        return await self._db.run(query)

    async def requeue(self, seqs: Sequence[int]) -> int:
        """Quarantined deliveries back in the queue, attempts reset."""

        def write(conn: sqlite3.Connection) -> int:
            moved = 0
            for seq in seqs:
                moved += conn.execute(
                    "UPDATE deliveries SET state = 'pending', attempts = 0, not_before = NULL,"
                    " last_error = NULL WHERE seq = ? AND state = 'quarantined'",
                    (seq,),
                ).rowcount
            return moved

        return await self._writer.run(write)

    async def prune(self, before: datetime) -> int:
        """Delete processed deliveries and settled notifications older than ``before``."""

        def write(conn: sqlite3.Connection) -> int:
            gone = conn.execute(
                "DELETE FROM deliveries WHERE state = 'processed' AND processed_at < ?",
                (_ts(before),),
            ).rowcount
            gone += conn.execute(
                "DELETE FROM notifications WHERE state IN ('sent', 'skipped') AND settled_at < ?",
                (_ts(before),),
            ).rowcount
            return gone

        gone = await self._writer.run(write)
        # Copied rows are safe here; the inbox keeps only what is not yet copied.
        await self._inbox.prune(await self._db.run(_inbox_mark))
        return gone

    async def stats(self) -> JournalStats:
        """The counters ``/webhook-status`` shows; they survive restarts."""

        def query(conn: sqlite3.Connection) -> JournalStats:
            counters: dict[str, dict[str, int]] = {"total": {}, "event_type": {}, "rejection": {}}
            # Counts from before the inbox existed stay in this file; both add up.
            for kind, key, value in [
                *conn.execute("SELECT kind, key, value FROM counters"),
                *inbox,
            ]:
                found = counters.setdefault(kind, {})
                found[key] = found.get(key, 0) + value
            # Literal states, so SQLite can use the partial indexes.
            states = {
                "pending": conn.execute(
                    "SELECT count(*) FROM deliveries WHERE state = 'pending'"
                ).fetchone()[0],
                "quarantined": conn.execute(
                    "SELECT count(*) FROM deliveries WHERE state = 'quarantined'"
                ).fetchone()[0],
            }
            notes = dict(
                conn.execute(
                    "SELECT state, count(*) FROM notifications "
                    "WHERE state IN ('pending', 'dead') GROUP BY state"
                ).fetchall()
            )
            row = conn.execute("SELECT value FROM meta WHERE key = 'last_event'").fetchone()
            last = from_plain(json.loads(row[0]), LastEvent) if row else None
            return JournalStats(
                total_events=counters["total"].get("", 0),
                events_by_type=counters["event_type"],
                rejections=counters["rejection"],
                backlog=states.get("pending", 0) + waiting,
                quarantined=states.get("quarantined", 0),
                notifications_pending=notes.get("pending", 0),
                notifications_dead=notes.get("dead", 0),
                last_event=last,
            )

        inbox = await self._inbox.counters()
        waiting = await self._inbox.waiting(await self._db.run(_inbox_mark))
        return await self._db.run(query)
