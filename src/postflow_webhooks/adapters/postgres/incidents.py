"""``PostgresIncidents``: open incidents about the receivers, kept in ``meta``, and their alerts.

As with SQLite, the open incidents are one JSON list under the ``meta`` key
``open_incidents``, and opening or closing one and queueing its alert is one
transaction. Several receivers share the list, so each change locks its row
first, and an alert is queued only for a change this transaction really
makes: a start alert for a reason that was not open, an end alert for one that
was. Two receivers that saw the same incident at once therefore queue one
alert between them, never two.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from postflow_webhooks.adapters.postgres.database import Conn, PostgresDatabase
from postflow_webhooks.adapters.postgres.outbox import insert_notifications
from postflow_webhooks.adapters.serialization import from_plain, to_plain
from postflow_webhooks.domain.alerts import AlertState, Incident
from postflow_webhooks.domain.records import Notification

META_KEY = "open_incidents"


def _parse(text: str | None) -> list[Incident]:
    return [] if text is None else [from_plain(item, Incident) for item in json.loads(text)]


def _made_by(note: Notification, opened: set[str], closed: set[str]) -> bool:
    """True unless ``note`` announces a change this transaction did not make."""
    alert = note.alert
    if alert is None:
        return True
    if alert.state is AlertState.STARTED:
        return alert.reason in opened
    return alert.reason in closed


class PostgresIncidents:
    """``IncidentLog`` over one ``PostgresDatabase``."""

    def __init__(self, db: PostgresDatabase) -> None:
        self._db = db

    async def open_incidents(self) -> list[Incident]:
        """The incidents open now, oldest first."""

        async def query(conn: Conn) -> list[Incident]:
            cur = await conn.execute("SELECT value FROM meta WHERE key = %s", (META_KEY,))
            row = await cur.fetchone()
            return _parse(row[0] if row else None)

        return await self._db.read(query)

    async def record(
        self,
        opened: Sequence[Incident],
        closed: Sequence[str],
        notifications: Sequence[Notification],
    ) -> None:
        """Open and close incidents and queue the alerts of the changes made, in one transaction."""

        async def write(conn: Conn) -> None:
            await conn.execute(
                "INSERT INTO meta (key, value) VALUES (%s, '[]') ON CONFLICT (key) DO NOTHING",
                (META_KEY,),
            )
            cur = await conn.execute(
                "SELECT value FROM meta WHERE key = %s FOR UPDATE", (META_KEY,)
            )
            row = await cur.fetchone()
            before = _parse(row[0] if row else None)
            was_open = {i.reason for i in before}
            gone = set(closed) & was_open
            current = [i for i in before if i.reason not in gone]
            known = {i.reason for i in current}
            new = [i for i in opened if i.reason not in known]
            current += new
            await conn.execute(
                "UPDATE meta SET value = %s WHERE key = %s",
                (json.dumps([to_plain(i) for i in current], ensure_ascii=False), META_KEY),
            )
            made = {i.reason for i in new} - was_open
            await insert_notifications(conn, [n for n in notifications if _made_by(n, made, gone)])

        await self._db.write(write)
