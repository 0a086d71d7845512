"""What only the shared PostgreSQL store does: layout versions, fencing, roles, wake-ups."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import psycopg
import pytest

from postflow_webhooks.adapters.postgres import (
    DELIVERIES_CHANNEL,
    PostgresDatabase,
    PostgresJournal,
    PostgresOutbox,
    PostgresRecords,
    PostgresRoles,
)
from postflow_webhooks.adapters.postgres.journal import ConcurrentWorkerError
from postflow_webhooks.adapters.postgres.schema import LATEST
from postflow_webhooks.domain.errors import StorageError
from postflow_webhooks.domain.journal import BatchResult, IncomingDelivery, Quarantine
from postflow_webhooks.domain.ports import Role
from postflow_webhooks.domain.records import UploadRecord
from postflow_webhooks.domain.statuses import PostflowStatus
from tests.contract.test_journal import note
from tests.postgres import scratch_database

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def incoming(file_id: str) -> IncomingDelivery:
    """A delivery about ``file_id``."""
    return IncomingDelivery(uuid.uuid4().hex, T0, b"{}", "file.ready", file_id, True)


@pytest.fixture
def url() -> Iterator[str]:
    """A database of this test's own."""
    with scratch_database() as made:
        yield made


@pytest.fixture
async def db(url: str) -> AsyncIterator[PostgresDatabase]:
    """The database, opened (tables created), closed after the test."""
    database = PostgresDatabase(url)
    database.open()
    yield database
    await database.close()


def no_wait(failures: int) -> float:
    """Reconnect at once (tests)."""
    return 0.05


@pytest.mark.anyio
async def test_a_database_newer_than_the_code_is_refused(url: str) -> None:
    """A layout version above LATEST is refused, naming the database and what to do."""
    PostgresDatabase(url).open()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("UPDATE postflow_schema SET version = %s", (LATEST + 1,))
    with pytest.raises(StorageError) as raised:
        PostgresDatabase(url).open()
    message = str(raised.value)
    assert f"layout version {LATEST + 1}" in message and "newer release" in message
    assert "Upgrade postflow-webhooks" in message


@pytest.mark.anyio
async def test_opening_twice_and_at_once_migrates_once(url: str) -> None:
    """Several receivers starting together: one migrates, the others find the layout ready."""
    await asyncio.gather(*(asyncio.to_thread(PostgresDatabase(url).open) for _ in range(4)))
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT version FROM postflow_schema").fetchall() == [(LATEST,)]


@pytest.mark.anyio
async def test_an_unreachable_server_is_a_storage_error_without_the_password() -> None:
    """A server nobody runs fails at open with the redacted name and the fix."""
    database = PostgresDatabase("postgresql://pfw:hunter2@127.0.0.1:1/nowhere")
    with pytest.raises(StorageError) as raised:
        database.open()
    assert "postgresql://pfw@127.0.0.1:1/nowhere" in str(raised.value)
    assert "hunter2" not in str(raised.value) and "POSTFLOW_DATABASE_URL" in str(raised.value)


@pytest.mark.anyio
async def test_a_failed_commit_writes_nothing(db: PostgresDatabase) -> None:
    """A pass whose commit fails part way leaves no mark, record or notification behind."""
    journal = PostgresJournal(db)
    await journal.append(incoming("a"))
    await journal.append(incoming("b"))
    a, b = await journal.pending(10, T0)
    unstorable = Quarantine(b.seq, object())  # type: ignore[arg-type]
    with pytest.raises(StorageError):
        await journal.commit(
            BatchResult(
                at=T0,
                processed=(a.seq,),
                quarantined=(unstorable,),
                records=(UploadRecord.new("a", T0),),
                notifications=(note("a", PostflowStatus.COMPLETED),),
            )
        )
    assert [p.seq for p in await journal.pending(10, T0)] == [a.seq, b.seq]
    assert await PostgresRecords(db).find("a") is None
    assert await PostgresOutbox(db).due(10) == []


@pytest.mark.anyio
async def test_a_second_worker_committing_the_same_deliveries_is_rolled_back(
    db: PostgresDatabase,
) -> None:
    """Two passes over the same deliveries (a cut-off holder): the later commit changes nothing."""
    journal = PostgresJournal(db)
    await journal.append(incoming("a"))
    (a,) = await journal.pending(10, T0)
    first = UploadRecord.new("a", T0, name="first.mov")
    second = UploadRecord.new("a", T0, name="second.mov")
    await journal.commit(BatchResult(at=T0, processed=(a.seq,), records=(first,)))
    with pytest.raises(ConcurrentWorkerError, match="rolled back"):
        await journal.commit(
            BatchResult(
                at=T0,
                processed=(a.seq,),
                records=(second,),
                notifications=(note("a", PostflowStatus.COMPLETED),),
            )
        )
    assert await PostgresRecords(db).find("a") == first
    assert await PostgresOutbox(db).due(10) == []


@pytest.mark.anyio
async def test_each_role_has_one_holder_and_moves_when_it_closes(url: str) -> None:
    """Of two receivers one holds the role; when its session ends the other takes it."""
    PostgresDatabase(url).open()
    events: list[str] = []

    def roles(name: str) -> tuple[PostgresRoles, list[Role]]:
        async def gain() -> None:
            events.append(f"{name} gained")

        async def lose() -> None:
            events.append(f"{name} lost")

        conninfo = PostgresDatabase(url).conninfo
        leases = PostgresRoles(conninfo, name, reconnect=no_wait, retry_every=0.1)
        return leases, [Role("worker", gain, lose)]

    first, first_roles = roles("first")
    second, second_roles = roles("second")
    await first.start(first_roles)
    await second.start(second_roles)
    try:
        assert (first.state(), second.state()) == ({"worker": "held"}, {"worker": "standby"})
        await first.stop()
        for _ in range(100):
            if second.holds("worker"):
                break
            await asyncio.sleep(0.05)
        assert second.state() == {"worker": "held"}
        assert events == ["first gained", "first lost", "second gained"]
    finally:
        await second.stop()
    assert events[-1] == "second lost"


@pytest.mark.anyio
async def test_a_committed_delivery_wakes_the_listening_receiver(
    url: str, db: PostgresDatabase
) -> None:
    """A delivery committed through one receiver's pool rings another's listener at commit."""
    rang = asyncio.Event()
    listener = PostgresRoles(db.conninfo, "listener", reconnect=no_wait)
    listener.on_notify(DELIVERIES_CHANNEL, rang.set)
    await listener.start([])
    other = PostgresDatabase(url)
    try:
        await PostgresJournal(other).append(incoming("a"))
        await asyncio.wait_for(rang.wait(), 5)
    finally:
        await other.close()
        await listener.stop()


@pytest.mark.anyio
async def test_every_commit_waits_for_the_disk_even_if_the_url_says_otherwise(url: str) -> None:
    """A URL asking for ``synchronous_commit=off`` still gets ``on``: a 202 follows a flushed commit."""
    separator = "&" if "?" in url else "?"
    database = PostgresDatabase(f"{url}{separator}options=-c%20synchronous_commit%3Doff")
    database.open()
    try:

        async def setting(conn: psycopg.AsyncConnection[object]) -> object:
            cur = await conn.execute("SHOW synchronous_commit")
            row = await cur.fetchone()
            return row[0] if row else None

        assert await database.read(setting) == "on"
        assert await database.write(setting) == "on"
    finally:
        await database.close()
