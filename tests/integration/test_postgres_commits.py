"""PostgreSQL's commits: one bad item fails alone, an outage is reported, two receivers agree."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from postflow_webhooks.adapters.postgres import (
    PostgresDatabase,
    PostgresIncidents,
    PostgresJournal,
    PostgresOutbox,
    PostgresRecords,
)
from postflow_webhooks.domain.alerts import Alert, AlertState, Incident
from postflow_webhooks.domain.errors import StorageError, StorageUnavailableError
from postflow_webhooks.domain.journal import BatchResult, IncomingDelivery
from postflow_webhooks.domain.records import NotificationKind, UploadRecord
from postflow_webhooks.service.alerts import alert_notification
from tests.postgres import SERVER_URL, scratch_database

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def delivery(event_type: str = "file.ready", file_id: str = "f") -> IncomingDelivery:
    """An unsigned delivery of ``event_type`` about ``file_id``."""
    return IncomingDelivery(uuid.uuid4().hex, T0, b"{}", event_type, file_id)


@pytest.fixture
def url() -> Iterator[str]:
    """A database of this test's own."""
    with scratch_database() as made:
        yield made


@pytest.fixture
async def db(url: str) -> AsyncIterator[PostgresDatabase]:
    """The database, opened, closed after the test."""
    database = PostgresDatabase(url)
    database.open()
    yield database
    await database.close()


def end_sessions(url: str) -> None:
    """Close every session of the test's database from the server side (as a restart does)."""
    name = conninfo_to_dict(url)["dbname"]
    with psycopg.connect(SERVER_URL, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )


def set_read_only(url: str, read_only: bool) -> None:
    """Make new sessions of the database read-only (as on a standby), or writable again."""
    name = conninfo_to_dict(url)["dbname"]
    change = "SET default_transaction_read_only = on" if read_only else "RESET ALL"
    with psycopg.connect(SERVER_URL, autocommit=True) as admin:
        admin.execute(f"ALTER DATABASE {name} {change}")


@pytest.mark.anyio
async def test_one_unstorable_item_fails_alone_and_nul_is_stored(db: PostgresDatabase) -> None:
    """Twenty good deliveries, one unencodable, one with NUL: only the unencodable one fails."""
    journal = PostgresJournal(db)
    good = [delivery() for _ in range(20)]
    bad = delivery("file.ready\ud83d")
    nul = delivery("file.ready\x00x", file_id="f\x00g")
    results = await asyncio.gather(
        *(journal.append(item) for item in [*good[:10], bad, nul, *good[10:]]),
        return_exceptions=True,
    )
    assert isinstance(results[10], UnicodeEncodeError)
    assert [r for i, r in enumerate(results) if i != 10] == [None] * 21
    stats = await journal.stats()
    assert (stats.total_events, stats.backlog) == (21, 21)
    assert stats.events_by_type["file.ready\ufffdx"] == 1
    assert db.commit_failure() is None
    (pending,) = [p for p in await journal.pending(50, T0) if p.delivery_id == nul.delivery_id]
    assert pending.file_id == "f\ufffdg" and pending.body == b"{}"


@pytest.mark.anyio
async def test_a_record_whose_id_holds_nul_is_found_by_that_id(db: PostgresDatabase) -> None:
    """A file id with NUL (stored with a stand-in) is found again by the same id."""
    journal, records = PostgresJournal(db), PostgresRecords(db)
    record = UploadRecord.new("clip\x00.mov", T0, name="clip\x00.mov")
    await journal.commit(BatchResult(at=T0, records=(record,)))
    assert await records.find_many(["clip\x00.mov", "other"]) == {"clip\x00.mov": record}


@pytest.mark.anyio
async def test_a_read_only_database_is_a_commit_failure_until_it_takes_writes(
    url: str, db: PostgresDatabase
) -> None:
    """Sessions made read-only: appends fail as unavailable, the reason is kept; recheck clears."""
    journal = PostgresJournal(db)
    await journal.append(delivery())
    set_read_only(url, True)
    end_sessions(url)
    try:
        for _ in range(10):  # the pool's old sessions fail first; then new, read-only ones
            with pytest.raises(StorageUnavailableError):
                await journal.append(delivery())
            failure = db.commit_failure()
            assert failure is not None
            if failure.reason == "read_only":
                break
        assert failure.reason == "read_only" and "read-only" in failure.detail
        await db.recheck()
        assert db.commit_failure() is not None
    finally:
        set_read_only(url, False)
        end_sessions(url)
    for _ in range(10):
        await db.recheck()
        if db.commit_failure() is None:
            break
    assert db.commit_failure() is None
    await journal.append(delivery())
    assert (await journal.stats()).backlog == 2


@pytest.mark.anyio
async def test_a_value_postgres_refuses_is_a_storage_error_not_an_outage(
    db: PostgresDatabase,
) -> None:
    """A constraint one write breaks is that write's StorageError; health is untouched."""

    async def duplicate_key(conn: psycopg.AsyncConnection) -> None:  # type: ignore[type-arg]
        await conn.execute("INSERT INTO meta (key, value) VALUES ('k', 'v')")
        await conn.execute("INSERT INTO meta (key, value) VALUES ('k', 'v')")

    with pytest.raises(StorageError) as raised:
        await db.write(duplicate_key)
    assert not isinstance(raised.value, StorageUnavailableError)
    assert db.commit_failure() is None


@pytest.mark.anyio
async def test_two_receivers_opening_one_incident_queue_one_alert(url: str) -> None:
    """Two incident logs on one database record the same start at once: one alert is queued."""
    first, second = PostgresDatabase(url), PostgresDatabase(url)
    first.open()
    try:
        incident = Incident("tunnel_down", "Tunnel down", "tunnel: failed", T0)
        alert = Alert("tunnel_down", AlertState.STARTED, "Tunnel down", "tunnel: failed", T0)
        note = alert_notification(alert, T0)
        await asyncio.gather(
            PostgresIncidents(first).record([incident], [], [note]),
            PostgresIncidents(second).record([incident], [], [note]),
        )
        due = await PostgresOutbox(first).due(10)
        assert [n.kind for n in due] == [NotificationKind.ALERT]
        ended = ended_alert(alert)
        await asyncio.gather(
            PostgresIncidents(first).record([], ["tunnel_down"], [alert_notification(ended, T0)]),
            PostgresIncidents(second).record([], ["tunnel_down"], [alert_notification(ended, T0)]),
        )
        states = [n.alert.state for n in await PostgresOutbox(first).due(10) if n.alert]
        assert states == [AlertState.STARTED, AlertState.ENDED]
        assert await PostgresIncidents(second).open_incidents() == []
    finally:
        await first.close()
        await second.close()


def ended_alert(alert: Alert) -> Alert:
    """The end alert of ``alert``."""
    return Alert(alert.reason, AlertState.ENDED, alert.title, alert.detail, alert.started_at, T0)
