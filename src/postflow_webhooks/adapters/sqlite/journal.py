"""``SqliteJournal``: accepted deliveries, from the receiver's commit to the worker's mark.

Fits ``DeliveryInbox`` (the receiver), ``DeliveryQueue`` (the worker),
``DeliveryDesk`` (deferred and quarantined deliveries), ``Retention`` and
``Counters``. A worker pass commits its marks, the records it changed, the
notifications it made due and the last event in one transaction.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from postflow_webhooks.adapters.serialization import from_plain, to_plain
from postflow_webhooks.adapters.sqlite.database import SqliteDatabase
from postflow_webhooks.adapters.sqlite.rows import (
    moment,
    notification_rows,
    optional_moment,
    record_rows,
    stamp,
    write_record_rows,
)
from postflow_webhooks.domain.endpoint import MAX_EVENT_TYPES_SHOWN
from postflow_webhooks.domain.journal import (
    BatchResult,
    IncomingDelivery,
    JournalStats,
    LastEvent,
    PendingDelivery,
    QuarantinedDelivery,
    WordKind,
)

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


def _pending(row: tuple[Any, ...]) -> PendingDelivery:
    return PendingDelivery(
        seq=row[0],
        delivery_id=row[1],
        received_at=moment(row[2]),
        body=bytes(row[3]),
        event_type=row[4],
        file_id=row[5],
        attempts=row[6],
        not_before=optional_moment(row[7]),
        last_error=row[8],
    )


def _events_by_type(conn: sqlite3.Connection) -> dict[str, int]:
    """The most frequent event types by name; the rest summed under ``other``."""
    shown = dict(
        conn.execute(
            "SELECT key, value FROM counters WHERE kind = 'event_type' "
            "ORDER BY value DESC, key LIMIT ?",
            (MAX_EVENT_TYPES_SHOWN,),
        ).fetchall()
    )
    kinds, total = conn.execute(
        "SELECT count(*), coalesce(sum(value), 0) FROM counters WHERE kind = 'event_type'"
    ).fetchone()
    if kinds > len(shown):
        rest = total - sum(shown.values())
        shown["other"] = shown.get("other", 0) + rest
    return shown


COUNT_WORD = (
    "INSERT INTO counters (kind, key, value) VALUES (?, ?, 1) "
    "ON CONFLICT (kind, key) DO UPDATE SET value = value + 1"
)


def _words(conn: sqlite3.Connection, kind: WordKind) -> dict[str, int]:
    """The most frequent words of ``kind`` that decided nothing, with how often."""
    rows = conn.execute(
        "SELECT key, value FROM counters WHERE kind = ? ORDER BY value DESC, key LIMIT ?",
        (kind.value, MAX_EVENT_TYPES_SHOWN),
    )
    return dict(rows.fetchall())


class SqliteJournal:
    """The deliveries of one ``SqliteDatabase``."""

    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db

    # -- DeliveryInbox ---------------------------------------------------------

    async def append(self, delivery: IncomingDelivery) -> str | None:
        """Commit a delivery and count it, once on disk; for a replay, the first one's id."""
        return await self._db.accept(delivery)

    async def reject(self, reason: str) -> None:
        """Count a refused request by reason."""
        await self._db.accept(reason)

    # -- DeliveryQueue ---------------------------------------------------------

    async def pending(self, limit: int, now: datetime) -> list[PendingDelivery]:
        """Due deliveries in order; a file waiting on a deferred delivery is held back."""

        def query(conn: sqlite3.Connection) -> list[PendingDelivery]:
            rows = conn.execute(_DUE, {"now": stamp(now), "limit": limit}).fetchall()
            return [_pending(r) for r in rows]

        return await self._db.read(query)

    async def next_due(self) -> datetime | None:
        """When the earliest deferred delivery becomes due."""

        def query(conn: sqlite3.Connection) -> datetime | None:
            row = conn.execute(
                "SELECT min(not_before) FROM deliveries "
                "WHERE state = 'pending' AND not_before IS NOT NULL"
            ).fetchone()
            return optional_moment(row[0])

        return await self._db.read(query)

    async def commit(self, result: BatchResult) -> None:
        """One transaction: marks, deferrals, quarantine, records, notifications, last event."""
        now = stamp(result.at) if result.at else None
        records = record_rows(result.records)
        notes = notification_rows(result.notifications)
        last = json.dumps(to_plain(result.last_event)) if result.last_event else None

        def write(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "UPDATE deliveries SET state = 'processed', processed_at = ? WHERE seq = ?",
                [(now, seq) for seq in result.processed],
            )
            conn.executemany(
                "UPDATE deliveries SET attempts = attempts + 1, not_before = ?, "
                "last_error = ? WHERE seq = ?",
                [(stamp(d.not_before), d.reason, d.seq) for d in result.deferred],
            )
            conn.executemany(
                "UPDATE deliveries SET state = 'quarantined', last_error = ? WHERE seq = ?",
                [(q.reason, q.seq) for q in result.quarantined],
            )
            write_record_rows(conn, records)
            conn.executemany(
                "INSERT INTO notifications (file_id, body, created_at) VALUES (?, ?, ?)", notes
            )
            if last is not None:
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('last_event', ?) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (last,),
                )
            conn.executemany(COUNT_WORD, [(w.kind.value, w.word) for w in result.words])

        await self._db.write(write)

    # -- DeliveryDesk ----------------------------------------------------------

    async def deferred(self, limit: int = 100) -> list[PendingDelivery]:
        """Deliveries waiting for a retry (enrichment failed), oldest first."""

        def query(conn: sqlite3.Connection) -> list[PendingDelivery]:
            rows = conn.execute(
                f"SELECT {_PENDING_COLUMNS} FROM deliveries "
                "WHERE state = 'pending' AND not_before IS NOT NULL ORDER BY seq LIMIT ?",
                (limit,),
            ).fetchall()
            return [_pending(r) for r in rows]

        return await self._db.read(query)

    async def waiting(self, file_id: str) -> int:
        """This file's deliveries not applied yet (the pending index holds only those)."""

        def query(conn: sqlite3.Connection) -> int:
            row = conn.execute(
                "SELECT count(*) FROM deliveries INDEXED BY deliveries_pending "
                "WHERE state = 'pending' AND file_id = ?",
                (file_id,),
            ).fetchone()
            return int(row[0])

        return await self._db.read(query)

    async def quarantined(self, limit: int = 100) -> list[QuarantinedDelivery]:
        """Quarantined deliveries, oldest first."""

        def query(conn: sqlite3.Connection) -> list[QuarantinedDelivery]:
            rows = conn.execute(
                "SELECT seq, delivery_id, received_at, event_type, last_error, body "
                "FROM deliveries WHERE state = 'quarantined' ORDER BY seq LIMIT ?",
                (limit,),
            ).fetchall()
            return [
                QuarantinedDelivery(r[0], r[1], moment(r[2]), r[3], r[4] or "", bytes(r[5]))
                for r in rows
            ]

        return await self._db.read(query)

    async def requeue(self, seqs: Sequence[int]) -> int:
        """Quarantined deliveries back in the queue, attempts reset."""

        def write(conn: sqlite3.Connection) -> int:
            return sum(
                conn.execute(
                    "UPDATE deliveries SET state = 'pending', attempts = 0, not_before = NULL,"
                    " last_error = NULL WHERE seq = ? AND state = 'quarantined'",
                    (seq,),
                ).rowcount
                for seq in seqs
            )

        return await self._db.write(write)

    # -- Retention -------------------------------------------------------------

    async def prune(self, before: datetime) -> int:
        """Delete processed deliveries and settled notifications older than ``before``."""

        def write(conn: sqlite3.Connection) -> int:
            gone = conn.execute(
                "DELETE FROM deliveries WHERE state = 'processed' AND processed_at < ?",
                (stamp(before),),
            ).rowcount
            gone += conn.execute(
                "DELETE FROM notifications WHERE state IN ('sent', 'skipped') AND settled_at < ?",
                (stamp(before),),
            ).rowcount
            return gone

        return await self._db.write(write)

    # -- Counters --------------------------------------------------------------

    async def stats(self) -> JournalStats:
        """The counters ``/webhook-status`` shows; they survive restarts."""

        def query(conn: sqlite3.Connection) -> JournalStats:
            counters: dict[str, dict[str, int]] = {"total": {}, "duplicate": {}, "rejection": {}}
            for kind, key, value in conn.execute(
                "SELECT kind, key, value FROM counters "
                "WHERE kind IN ('total', 'duplicate', 'rejection')"
            ):
                counters.setdefault(kind, {})[key] = value
            # Literal states, so SQLite can use the partial indexes.
            pending = conn.execute(
                "SELECT count(*) FROM deliveries WHERE state = 'pending'"
            ).fetchone()[0]
            quarantined = conn.execute(
                "SELECT count(*) FROM deliveries WHERE state = 'quarantined'"
            ).fetchone()[0]
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
                events_by_type=_events_by_type(conn),
                rejections=counters["rejection"],
                duplicates=counters["duplicate"].get("", 0),
                backlog=pending,
                quarantined=quarantined,
                notifications_pending=notes.get("pending", 0),
                notifications_dead=notes.get("dead", 0),
                last_event=last,
                unmapped_review_options=_words(conn, WordKind.REVIEW_OPTION),
                unknown_statuses=_words(conn, WordKind.UNKNOWN_STATUS),
            )

        return await self._db.read(query)
