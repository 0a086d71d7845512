"""The group-commit writer on a real SQLite file: one bad item fails alone; outages are reported."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from postflow_webhooks.adapters.sqlite import SqliteDatabase, SqliteJournal, group_commit
from postflow_webhooks.domain.errors import StorageError, StorageUnavailableError
from postflow_webhooks.domain.journal import IncomingDelivery
from tests.support import hold_write_lock

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def delivery(event_type: str = "file.ready") -> IncomingDelivery:
    """A delivery of ``event_type``."""
    return IncomingDelivery(uuid.uuid4().hex, T0, b"{}", event_type, "f")


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[SqliteDatabase]:
    """An open database file."""
    database = SqliteDatabase(tmp_path / "postflow.sqlite3")
    database.open()
    yield database
    await database.close()


@pytest.mark.anyio
async def test_one_item_sqlite_cannot_bind_fails_alone(db: SqliteDatabase) -> None:
    """Twenty good deliveries and one unencodable one in one batch: only that one fails."""
    journal = SqliteJournal(db)
    good = [delivery() for _ in range(20)]
    bad = delivery("file.ready\ud83d")
    results = await asyncio.gather(
        *(journal.append(item) for item in [*good[:10], bad, *good[10:]]),
        return_exceptions=True,
    )
    assert [type(r).__name__ for r in results].count("UnicodeEncodeError") == 1
    assert isinstance(results[10], UnicodeEncodeError)
    stats = await journal.stats()
    assert (stats.total_events, stats.backlog) == (20, 20)
    assert db.commit_failure() is None


@pytest.mark.anyio
async def test_a_failing_queued_function_fails_alone(db: SqliteDatabase) -> None:
    """A queued write that raises (a bug) fails its caller only; the batch's others commit."""
    journal = SqliteJournal(db)

    def broken(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO meta (key, value) VALUES ('x', 'y')")
        raise ValueError("a bug in one write")

    results = await asyncio.gather(
        journal.append(delivery()),
        db.write(broken),
        journal.append(delivery()),
        return_exceptions=True,
    )
    assert results[0] is None and results[2] is None
    assert isinstance(results[1], ValueError)
    assert (await journal.stats()).backlog == 2
    assert await db.read(lambda c: c.execute("SELECT count(*) FROM meta").fetchone()[0]) == 0


@pytest.mark.anyio
async def test_a_lock_held_past_patience_is_a_commit_failure_until_a_commit_succeeds(
    db: SqliteDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Locked past the busy timeout: every waiter fails, the reason is kept, a commit clears it."""
    monkeypatch.setattr(group_commit, "BUSY_TIMEOUT_MS", 300)
    journal = SqliteJournal(db)
    other = hold_write_lock(db.path)
    try:
        results = await asyncio.gather(
            journal.append(delivery()), journal.append(delivery()), return_exceptions=True
        )
        assert all(isinstance(r, StorageUnavailableError) for r in results)
        failure = db.commit_failure()
        assert failure is not None and failure.reason == "locked"
        await db.recheck()  # still locked: still failing
        assert db.commit_failure() is not None
    finally:
        other.execute("ROLLBACK")
        other.close()
    await db.recheck()
    assert db.commit_failure() is None
    await journal.append(delivery())
    assert (await journal.stats()).backlog == 1


@pytest.mark.anyio
async def test_a_bad_item_is_a_storage_error_for_sqlite_and_not_an_outage(
    db: SqliteDatabase,
) -> None:
    """A constraint one write breaks is that write's StorageError; health is untouched."""

    def duplicate_key(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO meta (key, value) VALUES ('k', 'v')")
        conn.execute("INSERT INTO meta (key, value) VALUES ('k', 'v')")

    with pytest.raises(StorageError) as raised:
        await db.write(duplicate_key)
    assert not isinstance(raised.value, StorageUnavailableError)
    assert db.commit_failure() is None
