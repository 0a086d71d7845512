"""``SqliteOutbox``: the notification outbox, the dead letters and the destinations' state.

Notifications are committed by the worker's pass (``SqliteJournal.commit``),
in the same transaction as the change that made them due; the dispatcher
reads them here in commit order and settles each one. Settling one also counts
it (``counters``, kind ``notification``), so the totals survive restarts.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime

from postflow_webhooks.adapters.serialization import load_notification
from postflow_webhooks.adapters.sqlite.database import SqliteDatabase
from postflow_webhooks.adapters.sqlite.rows import moment, optional_moment, stamp
from postflow_webhooks.domain.journal import DeadLetter, DestinationState, NotificationState
from postflow_webhooks.domain.records import Notification

_BUMP = (
    "INSERT INTO counters (kind, key, value) VALUES ('notification', ?, 1) "
    "ON CONFLICT (kind, key) DO UPDATE SET value = value + 1"
)


class SqliteOutbox:
    """``NotificationOutbox``, ``DeadLetters`` and ``DestinationStates`` over one database."""

    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db

    async def due(
        self, limit: int, destination: str | None = None, *, exclude: Sequence[str] = ()
    ) -> list[Notification]:
        """Pending notifications in commit order (of one destination, or none of ``exclude``)."""
        where = ["state = 'pending'"]
        args: list[object] = []
        if destination is not None:
            where.append("destination = ?")
            args.append(destination)
        if exclude:
            where.append(f"destination NOT IN ({','.join('?' * len(exclude))})")
            args.extend(exclude)
        sql = f"SELECT id, body FROM notifications WHERE {' AND '.join(where)} ORDER BY id LIMIT ?"

        def query(conn: sqlite3.Connection) -> list[Notification]:
            rows = conn.execute(sql, (*args, limit)).fetchall()
            return [load_notification(body, nid) for nid, body in rows]

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
        def write(conn: sqlite3.Connection) -> None:
            changed = conn.execute(
                "UPDATE notifications SET state = ?, reason = ?, settled_at = ? WHERE id = ?",
                (state.value, reason, stamp(at), notification_id),
            ).rowcount
            if changed:
                conn.execute(_BUMP, (state.value,))

        await self._db.write(write)

    async def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        """Dead notifications, oldest first."""

        def query(conn: sqlite3.Connection) -> list[DeadLetter]:
            rows = conn.execute(
                "SELECT id, body, reason, settled_at FROM notifications WHERE state = 'dead' "
                "ORDER BY id LIMIT ?",
                (limit,),
            ).fetchall()
            return [DeadLetter(load_notification(b, i), r or "", moment(s)) for i, b, r, s in rows]

        return await self._db.read(query)

    async def requeue_dead(self, notification_ids: Sequence[int]) -> int:
        """Dead notifications back to pending."""

        def write(conn: sqlite3.Connection) -> int:
            return sum(
                conn.execute(
                    "UPDATE notifications SET state = 'pending', reason = NULL, "
                    "settled_at = NULL WHERE id = ? AND state = 'dead'",
                    (nid,),
                ).rowcount
                for nid in notification_ids
            )

        return await self._db.write(write)

    async def destination(self, key: str) -> DestinationState:
        """A destination's saved state; working when never seen."""

        def query(conn: sqlite3.Connection) -> DestinationState:
            row = conn.execute(
                "SELECT broken, reason, since FROM destinations WHERE key = ?", (key,)
            ).fetchone()
            if row is None:
                return DestinationState(key=key)
            return DestinationState(
                key=key, broken=bool(row[0]), reason=row[1], since=optional_moment(row[2])
            )

        return await self._db.read(query)

    async def set_destination(self, state: DestinationState) -> None:
        """Save a destination's state."""

        def write(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO destinations (key, broken, reason, since) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (key) DO UPDATE SET broken = excluded.broken, "
                "reason = excluded.reason, since = excluded.since",
                (
                    state.key,
                    int(state.broken),
                    state.reason,
                    stamp(state.since) if state.since else None,
                ),
            )

        await self._db.write(write)
