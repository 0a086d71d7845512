"""One contract for ``IncidentLog``: memory, SQLite and PostgreSQL keep incidents and queue alerts alike."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from postflow_webhooks.adapters.memory import MemoryDatabase
from postflow_webhooks.adapters.postgres import PostgresDatabase, PostgresIncidents, PostgresOutbox
from postflow_webhooks.adapters.sqlite import SqliteDatabase, SqliteOutbox
from postflow_webhooks.adapters.sqlite.incidents import SqliteIncidents
from postflow_webhooks.domain.alerts import ALERTS_DESTINATION, Alert, AlertState, Incident
from postflow_webhooks.domain.records import Notification, NotificationKind
from postflow_webhooks.domain.statuses import PostflowStatus
from postflow_webhooks.service.alerts import alert_notification
from tests.postgres import create_database, drop_database

pytestmark = pytest.mark.anyio

T0 = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


class Store:
    """An incident log and the outbox it queues into, reopenable like the receiver's."""

    def __init__(self, kind: str, path: Path) -> None:
        self.kind = kind
        self.path = path
        self.memory = MemoryDatabase() if kind == "memory" else None
        self.url = create_database() if kind == "postgres" else None
        self._open()

    def _open(self) -> None:
        if self.memory is not None:
            self.incidents: Any = self.memory
            self.outbox: Any = self.memory
            return
        if self.url is not None:
            self.db: Any = PostgresDatabase(self.url)
            self.db.open()
            self.incidents = PostgresIncidents(self.db)
            self.outbox = PostgresOutbox(self.db)
            return
        self.db = SqliteDatabase(self.path)
        self.db.open()
        self.incidents = SqliteIncidents(self.db)
        self.outbox = SqliteOutbox(self.db)

    async def restart(self) -> None:
        """Close and reopen (the memory fake just stays)."""
        if self.memory is None:
            await self.db.close()
            self._open()

    async def close(self) -> None:
        """Release the file (drop the PostgreSQL database)."""
        if self.memory is None:
            await self.db.close()
        if self.url is not None:
            drop_database(self.url)


@pytest.fixture(params=["memory", "sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """Each implementation in turn."""
    opened = Store(request.param, tmp_path / "postflow.sqlite3")
    yield opened
    await opened.close()


def incident(reason: str = "tunnel_down") -> Incident:
    """An incident opened at T0."""
    return Incident(reason=reason, title="Tunnel down", detail="tunnel: failed", started_at=T0)


def started(item: Incident) -> Notification:
    """The start alert of ``item``."""
    alert = Alert(item.reason, AlertState.STARTED, item.title, item.detail, item.started_at)
    return alert_notification(alert, T0)


async def test_opened_incidents_and_their_alerts_survive_a_restart(store: Store) -> None:
    """An opened incident and its queued alert are both there after reopening."""
    await store.incidents.record([incident()], [], [started(incident())])
    await store.restart()
    assert await store.incidents.open_incidents() == [incident()]
    due = await store.outbox.due(10)
    assert [n.kind for n in due] == [NotificationKind.ALERT]
    assert due[0].alert is not None and due[0].alert.reason == "tunnel_down"
    assert due[0].alert.started_at == T0


async def test_closing_removes_only_the_named_incident(store: Store) -> None:
    """Closing one reason keeps the others, in the order they opened."""
    await store.incidents.record([incident("a"), incident("b"), incident("c")], [], [])
    await store.incidents.record([], ["b"], [])
    assert [i.reason for i in await store.incidents.open_incidents()] == ["a", "c"]


async def test_opening_an_open_reason_twice_keeps_the_first(store: Store) -> None:
    """The incident already open for a reason is kept as it was."""
    first = incident()
    await store.incidents.record([first], [], [])
    later = Incident(
        "tunnel_down", "Tunnel down", "another detail", datetime(2027, 1, 1, tzinfo=UTC)
    )
    await store.incidents.record([later], [], [])
    assert await store.incidents.open_incidents() == [first]


async def test_alerts_queue_behind_status_notifications_in_commit_order(store: Store) -> None:
    """Alerts join the same outbox: due in the order they were queued, with status messages."""
    status = Notification(
        kind=NotificationKind.STATUS,
        file_id="f1",
        at=T0,
        event_type="file.ready",
        delivery_id="d1",
        version=1,
        new_status=PostflowStatus.COMPLETED,
    )
    await store.incidents.record([], [], [status])
    await store.incidents.record([incident()], [], [started(incident())])
    assert [n.kind for n in await store.outbox.due(10)] == [
        NotificationKind.STATUS,
        NotificationKind.ALERT,
    ]


async def test_alerts_with_a_channel_of_their_own_are_due_only_there(store: Store) -> None:
    """Alerts for the ``alerts`` destination: that dispatcher sees them, the default one not."""
    status = Notification(
        kind=NotificationKind.STATUS,
        file_id="f1",
        at=T0,
        event_type="file.ready",
        delivery_id="d1",
        version=1,
    )
    alert = Alert("tunnel_down", AlertState.STARTED, "Tunnel down", "d", T0)
    routed = alert_notification(alert, T0, ALERTS_DESTINATION)
    await store.incidents.record([incident()], [], [status, routed])
    assert [n.kind for n in await store.outbox.due(10, ALERTS_DESTINATION)] == [
        NotificationKind.ALERT
    ]
    others = await store.outbox.due(10, exclude=[ALERTS_DESTINATION])
    assert [n.kind for n in others] == [NotificationKind.STATUS]
