"""``PostgresOutbox``: the notification outbox, the dead letters and the destinations' state.

Notifications are committed by the worker's pass (``PostgresJournal.commit``),
with ``NOTIFY postflow_outbox``; one receiver at a time holds the dispatcher
role and reads them here in commit order.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from postflow_webhooks.adapters.postgres.database import OUTBOX_CHANNEL, Conn, PostgresDatabase
from postflow_webhooks.adapters.serialization import load_notification
from postflow_webhooks.domain.journal import DeadLetter, DestinationState, NotificationState
from postflow_webhooks.domain.records import Notification


class PostgresOutbox:
    """``NotificationOutbox``, ``DeadLetters`` and ``DestinationStates`` over one database."""

    def __init__(self, db: PostgresDatabase) -> None:
        self._db = db

    async def due(self, limit: int) -> list[Notification]:
        """Pending notifications in commit order."""

        async def query(conn: Conn) -> list[Notification]:
            cur = await conn.execute(
                "SELECT id, body FROM notifications WHERE state = 'pending' ORDER BY id LIMIT %s",
                (limit,),
            )
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
            await conn.execute(
                "UPDATE notifications SET state = %s, reason = %s, settled_at = %s WHERE id = %s",
                (state.value, reason, at, notification_id),
            )

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
