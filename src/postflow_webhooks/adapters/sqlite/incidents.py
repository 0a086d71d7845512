"""``SqliteIncidents``: open incidents about the receiver, kept in ``meta``, and their alerts.

The open incidents are one JSON list under the ``meta`` key ``open_incidents``
(no table of their own: there are a handful at most). Opening or closing one
and queueing its alert in the notification outbox is one transaction, so an
alert is queued exactly once even if the process dies right after.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence

from postflow_webhooks.adapters.serialization import from_plain, to_plain
from postflow_webhooks.adapters.sqlite.database import SqliteDatabase
from postflow_webhooks.adapters.sqlite.rows import notification_rows
from postflow_webhooks.domain.alerts import Incident
from postflow_webhooks.domain.records import Notification

META_KEY = "open_incidents"


def _load(conn: sqlite3.Connection) -> list[Incident]:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (META_KEY,)).fetchone()
    if row is None:
        return []
    return [from_plain(item, Incident) for item in json.loads(row[0])]


class SqliteIncidents:
    """``IncidentLog`` over one ``SqliteDatabase``."""

    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db

    async def open_incidents(self) -> list[Incident]:
        """The incidents open now, oldest first."""
        return await self._db.read(_load)

    async def record(
        self,
        opened: Sequence[Incident],
        closed: Sequence[str],
        notifications: Sequence[Notification],
    ) -> None:
        """Open and close incidents and queue their alerts, in one transaction."""
        rows = notification_rows(notifications)
        gone = set(closed)

        def write(conn: sqlite3.Connection) -> None:
            current = [i for i in _load(conn) if i.reason not in gone]
            known = {i.reason for i in current}
            current += [i for i in opened if i.reason not in known]
            conn.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (META_KEY, json.dumps([to_plain(i) for i in current], ensure_ascii=False)),
            )
            conn.executemany(
                "INSERT INTO notifications (file_id, body, created_at) VALUES (?, ?, ?)", rows
            )

        await self._db.write(write)
