"""``PostgresOutbox``: the notification outbox, the dead letters and the destinations' state.

Notifications are committed by the worker's pass (``PostgresJournal.commit``)
or with an incident (``PostgresIncidents``), with ``NOTIFY postflow_outbox``;
one receiver at a time holds the dispatcher role and reads them here, each
destination's in commit order. Each notification's destination is a column of
its own, written with it. Settling one also counts it (``counters``, kind
``notification``), so the totals survive restarts and are the same on every
receiver.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from postflow_webhooks.adapters.postgres.database import OUTBOX_CHANNEL, Conn, PostgresDatabase
from postflow_webhooks.adapters.serialization import dump_notification, load_notification
from postflow_webhooks.domain.journal import DeadLetter, DestinationState, NotificationState
from postflow_webhooks.domain.records import Notification

_BUMP = (
    "INSERT INTO counters (kind, key, value) VALUES ('notification', %s, 1) "
    "ON CONFLICT (kind, key) DO UPDATE SET value = counters.value + 1"
)


async def insert_notifications(conn: Conn, notifications: Sequence[Notification]) -> None:
    """Queue notifications in the caller's transaction, and ring the dispatcher at commit."""
    if not notifications:
        return
    rows = [(n.file_id, n.destination, dump_notification(n), n.at) for n in notifications]
    async with conn.cursor() as cur:
        await cur.executemany(
            "INSERT INTO notifications (file_id, destination, body, created_at) "
            "VALUES (%s, %s, %s, %s)",
            rows,
        )
        await cur.execute(f"NOTIFY {OUTBOX_CHANNEL}")


class PostgresOutbox:
    """``NotificationOutbox``, ``DeadLetters`` and ``DestinationStates`` over one database."""

    def __init__(self, db: PostgresDatabase) -> None:
        self._db = db

    async def due(
        self, limit: int, destination: str | None = None, *, exclude: Sequence[str] = ()
    ) -> list[Notification]:
        """Pending notifications in commit order (of one destination, or none of ``exclude``)."""
        where = ["state = 'pending'"]
        args: list[object] = []
        if destination is not None:
            where.append("destination = %s")
            args.append(destination)
        if exclude:
            where.append("NOT (destination = ANY(%s))")
            args.append(list(exclude))
        sql = f"SELECT id, body FROM notifications WHERE {' AND '.join(where)} ORDER BY id LIMIT %s"

        async def query(conn: Conn) -> list[Notification]:
            cur = await conn.execute(sql, (*args, limit))
            return [load_notification(body, nid) for nid, body in await cur.fetchall()]

        return await self._db.read(query)

    async def mark_sent(self, notification_id: int, at: datetime) -> None:
        """The destination accepted it."""
        await self._settle(notification_id, NotificationState.SENT, None, at)

    async def mark_dead(self, notification_id: int, reason: str, at: datetime) -> None:
        """Refused for good; kept for replay."""
        await self._settle(notification_id, NotificationState.DEAD, reason, at)

    async def _settle(
        self, notification_id: int, state: NotificationState, reason: str | None, at: datetime
    ) -> None:
        async def write(conn: Conn) -> None:
            cur = await conn.execute(
                "UPDATE notifications SET state = %s, reason = %s, settled_at = %s WHERE id = %s",
                (state.value, reason, at, notification_id),
            )
            if cur.rowcount:
                await conn.execute(_BUMP, (state.value,))

        await self._db.write(write)

    async def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        """Dead notifications, oldest first."""

        async def query(conn: Conn) -> list[DeadLetter]:
            cur = await conn.execute(
                "SELECT id, body, reason, settled_at FROM notifications WHERE state = 'dead' "
                "ORDER BY id LIMIT %s",
                (limit,),
            )
            return [
                DeadLetter(load_notification(b, i), r or "", s)
                for i, b, r, s in await cur.fetchall()
            ]

        return await self._db.read(query)

    async def requeue_dead(self, notification_ids: Sequence[int]) -> int:
        """Dead notifications back to pending (wakes the dispatcher role's holder)."""

        async def write(conn: Conn) -> int:
            cur = await conn.execute(
                "UPDATE notifications SET state = 'pending', reason = NULL, settled_at = NULL "
                "WHERE id = ANY(%s) AND state = 'dead'",
                (list(notification_ids),),
            )
            if cur.rowcount:
                await conn.execute(f"NOTIFY {OUTBOX_CHANNEL}")
            return cur.rowcount

        return await self._db.write(write)

    async def destination(self, key: str) -> DestinationState:
        """A destination's saved state; working when never seen."""

        async def query(conn: Conn) -> DestinationState:
            cur = await conn.execute(
                "SELECT broken, reason, since FROM destinations WHERE key = %s", (key,)
            )
            row = await cur.fetchone()
            if row is None:
                return DestinationState(key=key)
            return DestinationState(key=key, broken=bool(row[0]), reason=row[1], since=row[2])

        return await self._db.read(query)

    async def set_destination(self, state: DestinationState) -> None:
        """Save a destination's state."""

        async def write(conn: Conn) -> None:
            await conn.execute(
                "INSERT INTO destinations (key, broken, reason, since) VALUES (%s, %s, %s, %s) "
                "ON CONFLICT (key) DO UPDATE SET broken = excluded.broken, "
                "reason = excluded.reason, since = excluded.since",
                (state.key, state.broken, state.reason, state.since),
            )

        await self._db.write(write)
