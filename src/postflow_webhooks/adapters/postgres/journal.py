"""``PostgresJournal``: accepted deliveries, from a receiver's commit to the worker's mark.

Fits ``DeliveryInbox``, ``DeliveryQueue``, ``DeliveryDesk``, ``Retention`` and
``Counters``, like ``SqliteJournal``. One receiver at a time holds the worker
role; its pass commits marks, records, notifications and the last event in one
transaction. Every mark is conditional on the delivery still being pending: if
a second worker ever ran (a holder cut off from the database while another took
over), the later of the two commits finds its deliveries already settled and is
rolled back whole, so no delivery is applied twice.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from postflow_webhooks.adapters.postgres.database import Conn, PostgresDatabase
from postflow_webhooks.adapters.postgres.ingress import DELIVERIES_CHANNEL
from postflow_webhooks.adapters.postgres.outbox import insert_notifications
from postflow_webhooks.adapters.postgres.records import upsert_records
from postflow_webhooks.adapters.serialization import from_plain, to_plain
from postflow_webhooks.domain.endpoint import MAX_EVENT_TYPES_SHOWN
from postflow_webhooks.domain.errors import StorageUnavailableError
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
  AND (d.not_before IS NULL OR d.not_before <= %(now)s)
  AND NOT EXISTS (
      SELECT 1 FROM deliveries AS e
      WHERE e.file_id = d.file_id AND e.state = 'pending'
        AND e.not_before IS NOT NULL AND e.seq < d.seq AND e.not_before > %(now)s)
ORDER BY d.seq
LIMIT %(limit)s
"""


class ConcurrentWorkerError(StorageUnavailableError):
    """Another worker settled some of this pass's deliveries first; the pass was rolled back.

    Unavailable rather than a bad item: the worker retries the whole pass (which
    no longer finds the settled deliveries) instead of quarantining any of them.
    """


def _pending(row: tuple[Any, ...]) -> PendingDelivery:
    return PendingDelivery(
        seq=row[0],
        delivery_id=row[1],
        received_at=row[2],
        body=bytes(row[3]),
        event_type=row[4],
        file_id=row[5],
        attempts=row[6],
        not_before=row[7],
        last_error=row[8],
    )


async def _settle(conn: Conn, sql: str, rows: Sequence[tuple[Any, ...]]) -> None:
    """Run a conditional mark per row; every one must hit a pending delivery."""
    async with conn.cursor() as cur:
        for row in rows:
            await cur.execute(sql, row)
            if cur.rowcount != 1:
                raise ConcurrentWorkerError(
                    "another worker settled delivery "
                    f"{row[-1]} first (two held the worker role at once); this pass was rolled "
                    "back and its deliveries will be read again"
                )


async def _mark_processed(conn: Conn, at: datetime | None, seqs: Sequence[int]) -> None:
    """Mark a pass's deliveries processed in one statement; all of them must still be pending."""
    wanted = list(dict.fromkeys(seqs))
    if not wanted:
        return
    cur = await conn.execute(
        "UPDATE deliveries SET state = 'processed', processed_at = %s "
        "WHERE state = 'pending' AND seq = ANY(%s)",
        (at, wanted),
    )
    if cur.rowcount != len(wanted):
        raise ConcurrentWorkerError(
            f"another worker settled {len(wanted) - cur.rowcount} of this pass's deliveries first "
            "(two held the worker role at once); this pass was rolled back and its deliveries "
            "will be read again"
        )


async def _events_by_type(conn: Conn) -> dict[str, int]:
    """The most frequent event types by name; the rest summed under ``other``."""
    cur = await conn.execute(
        "SELECT key, value FROM counters WHERE kind = 'event_type' "
        'ORDER BY value DESC, key COLLATE "C" LIMIT %s',
        (MAX_EVENT_TYPES_SHOWN,),
    )
    shown = {key: int(value) for key, value in await cur.fetchall()}
    cur = await conn.execute(
        "SELECT count(*), coalesce(sum(value), 0) FROM counters WHERE kind = 'event_type'"
    )
    row = await cur.fetchone()
    kinds, total = (int(row[0]), int(row[1])) if row else (0, 0)
    if kinds > len(shown):
        shown["other"] = shown.get("other", 0) + total - sum(shown.values())
    return shown


COUNT_WORD = (
    "INSERT INTO counters (kind, key, value) VALUES (%s, %s, 1) "
    "ON CONFLICT (kind, key) DO UPDATE SET value = counters.value + 1"
)


async def _words(conn: Conn, kind: WordKind) -> dict[str, int]:
    """The most frequent words of ``kind`` that decided nothing, with how often."""
    cur = await conn.execute(
        "SELECT key, value FROM counters WHERE kind = %s "
        'ORDER BY value DESC, key COLLATE "C" LIMIT %s',
        (kind.value, MAX_EVENT_TYPES_SHOWN),
    )
    return {key: int(value) for key, value in await cur.fetchall()}


class PostgresJournal:
    """The deliveries of one ``PostgresDatabase``."""

    def __init__(self, db: PostgresDatabase) -> None:
        self._db = db

    # -- DeliveryInbox ---------------------------------------------------------

    async def append(self, delivery: IncomingDelivery) -> str | None:
        """Commit a delivery and count it, once committed; for a replay, the first one's id."""
        return await self._db.accept(delivery)

    async def reject(self, reason: str) -> None:
        """Count a refused request by reason."""
        await self._db.accept(reason)

    # -- DeliveryQueue ---------------------------------------------------------

    async def pending(self, limit: int, now: datetime) -> list[PendingDelivery]:
        """Due deliveries in order; a file waiting on a deferred delivery is held back."""

        async def query(conn: Conn) -> list[PendingDelivery]:
            cur = await conn.execute(_DUE, {"now": now, "limit": limit})
            return [_pending(r) for r in await cur.fetchall()]

        return await self._db.read(query)

    async def next_due(self) -> datetime | None:
        """When the earliest deferred delivery becomes due."""

        async def query(conn: Conn) -> datetime | None:
            cur = await conn.execute(
                "SELECT min(not_before) FROM deliveries "
                "WHERE state = 'pending' AND not_before IS NOT NULL"
            )
            row = await cur.fetchone()
            return row[0] if row else None

        return await self._db.read(query)

    async def commit(self, result: BatchResult) -> None:
        """One transaction: marks, deferrals, quarantine, records, notifications, last event."""
        last = json.dumps(to_plain(result.last_event)) if result.last_event else None

        async def write(conn: Conn) -> None:
            await _mark_processed(conn, result.at, result.processed)
            await _settle(
                conn,
                "UPDATE deliveries SET attempts = attempts + 1, not_before = %s, last_error = %s "
                "WHERE state = 'pending' AND seq = %s",
                [(d.not_before, d.reason, d.seq) for d in result.deferred],
            )
            await _settle(
                conn,
                "UPDATE deliveries SET state = 'quarantined', last_error = %s "
                "WHERE state = 'pending' AND seq = %s",
                [(q.reason, q.seq) for q in result.quarantined],
            )
            await upsert_records(conn, result.records)
            await insert_notifications(conn, result.notifications)
            if last is not None:
                await conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('last_event', %s) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (last,),
                )
            if result.words:
                async with conn.cursor() as cur:
                    await cur.executemany(
                        COUNT_WORD, [(w.kind.value, w.word) for w in result.words]
                    )

        await self._db.write(write)

    # -- DeliveryDesk ----------------------------------------------------------

    async def deferred(self, limit: int = 100) -> list[PendingDelivery]:
        """Deliveries waiting for a retry (enrichment failed), oldest first."""

        async def query(conn: Conn) -> list[PendingDelivery]:
            cur = await conn.execute(
                f"SELECT {_PENDING_COLUMNS} FROM deliveries "
                "WHERE state = 'pending' AND not_before IS NOT NULL ORDER BY seq LIMIT %s",
                (limit,),
            )
            return [_pending(r) for r in await cur.fetchall()]

        return await self._db.read(query)

    async def waiting(self, file_id: str) -> int:
        """This file's deliveries not applied yet (pending or deferred)."""

        async def query(conn: Conn) -> int:
            cur = await conn.execute(
                "SELECT count(*) FROM deliveries WHERE state = 'pending' AND file_id = %s",
                (file_id,),
            )
            row = await cur.fetchone()
            return int(row[0]) if row else 0

        return await self._db.read(query)

    async def quarantined(self, limit: int = 100) -> list[QuarantinedDelivery]:
        """Quarantined deliveries, oldest first."""

        async def query(conn: Conn) -> list[QuarantinedDelivery]:
            cur = await conn.execute(
                "SELECT seq, delivery_id, received_at, event_type, last_error, body "
                "FROM deliveries WHERE state = 'quarantined' ORDER BY seq LIMIT %s",
                (limit,),
            )
            return [
                QuarantinedDelivery(r[0], r[1], r[2], r[3], r[4] or "", bytes(r[5]))
                for r in await cur.fetchall()
            ]

        return await self._db.read(query)

    async def requeue(self, seqs: Sequence[int]) -> int:
        """Quarantined deliveries back in the queue, attempts reset (wakes the worker)."""

        async def write(conn: Conn) -> int:
            cur = await conn.execute(
                "UPDATE deliveries SET state = 'pending', attempts = 0, not_before = NULL, "
                "last_error = NULL WHERE seq = ANY(%s) AND state = 'quarantined'",
                (list(seqs),),
            )
            if cur.rowcount:
                await conn.execute(f"NOTIFY {DELIVERIES_CHANNEL}")
            return cur.rowcount

        return await self._db.write(write)

    # -- Retention -------------------------------------------------------------

    async def prune(self, before: datetime) -> int:
        """Delete processed deliveries and settled notifications older than ``before``."""

        async def write(conn: Conn) -> int:
            gone = await conn.execute(
                "DELETE FROM deliveries WHERE state = 'processed' AND processed_at < %s",
                (before,),
            )
            notes = await conn.execute(
                "DELETE FROM notifications WHERE state IN ('sent', 'skipped') AND settled_at < %s",
                (before,),
            )
            return gone.rowcount + notes.rowcount

        return await self._db.write(write)

    # -- Counters --------------------------------------------------------------

    async def stats(self) -> JournalStats:
        """The counters ``/webhook-status`` shows, the same from every receiver."""

        async def query(conn: Conn) -> JournalStats:
            counters: dict[str, dict[str, int]] = {"total": {}, "duplicate": {}, "rejection": {}}
            cur = await conn.execute(
                "SELECT kind, key, value FROM counters "
                "WHERE kind IN ('total', 'duplicate', 'rejection')"
            )
            for kind, key, value in await cur.fetchall():
                counters.setdefault(kind, {})[key] = int(value)
            cur = await conn.execute(
                "SELECT (SELECT count(*) FROM deliveries WHERE state = 'pending'), "
                "(SELECT count(*) FROM deliveries WHERE state = 'quarantined'), "
                "(SELECT count(*) FROM notifications WHERE state = 'pending'), "
                "(SELECT count(*) FROM notifications WHERE state = 'dead'), "
                "(SELECT value FROM meta WHERE key = 'last_event')"
            )
            row = await cur.fetchone()
            assert row is not None
            pending, quarantined, notes_pending, notes_dead, last_text = row
            last = from_plain(json.loads(last_text), LastEvent) if last_text else None
            return JournalStats(
                total_events=counters["total"].get("", 0),
                events_by_type=await _events_by_type(conn),
                rejections=counters["rejection"],
                duplicates=counters["duplicate"].get("", 0),
                backlog=int(pending),
                quarantined=int(quarantined),
                notifications_pending=int(notes_pending),
                notifications_dead=int(notes_dead),
                last_event=last,
                unmapped_review_options=await _words(conn, WordKind.REVIEW_OPTION),
                unknown_statuses=await _words(conn, WordKind.UNKNOWN_STATUS),
            )

        return await self._db.read(query)
