"""One contract for the status page's reads (``StoreWatch``): SQLite and PostgreSQL alike."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest

from postflow_webhooks.adapters.postgres import PostgresWatch
from postflow_webhooks.adapters.sqlite.watch import SqliteWatch
from postflow_webhooks.domain.journal import BatchResult, Deferral, IncomingDelivery
from postflow_webhooks.domain.records import UploadRecord
from postflow_webhooks.domain.statuses import PostflowStatus, Processing, Review
from tests.contract.databases import (
    Database,
    PostgresTables,
    SqliteRoles,
    postgres_database,
    sqlite_database,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def record(file_id: str, name: str, minutes: int, **changes: Any) -> UploadRecord:
    """A record named ``name``, changed ``minutes`` after T0."""
    at = T0 + timedelta(minutes=minutes)
    return attrs.evolve(UploadRecord.new(file_id, at, name=name), **changes)


def watch_of(db: Database) -> Any:
    """The store's watch reads."""
    if isinstance(db, PostgresTables):
        return PostgresWatch(db.db)
    assert isinstance(db, SqliteRoles)
    return SqliteWatch(db.db)


class WatchContract:
    """Every store reads the page's figures the same way."""

    open_database: Callable[[Path], Database]

    @pytest.fixture
    async def db(self, tmp_path: Path) -> AsyncIterator[Database]:
        """A fresh database, closed after the test."""
        opened = type(self).open_database(tmp_path)
        yield opened
        await opened.close()

    @pytest.mark.anyio
    async def test_browse_filters_pages_and_counts(self, db: Database) -> None:
        """Newest change first; a status; a piece of the name, any case, % and _ literal."""
        records = [
            record("f1", "Hero_Shot.mov", 1, processing=Processing.READY),
            record("f2", "hero-shot-v2.mov", 2, processing=Processing.READY),
            record("f3", "100% final.mov", 3, review=Review.APPROVED),
            record("f4", "b-roll.mov", 4, processing=Processing.PROCESSING),
        ]
        await db.journal.commit(BatchResult(at=T0, records=tuple(records)))
        watch = watch_of(db)
        page, total, revision = await watch.browse(limit=2)
        assert [r.file_id for r in page] == ["f4", "f3"] and total == 4 and revision > 0
        page, total, _ = await watch.browse(offset=2, limit=2)
        assert [r.file_id for r in page] == ["f2", "f1"] and total == 4
        ready, total, _ = await watch.browse(status=PostflowStatus.COMPLETED)
        assert [r.file_id for r in ready] == ["f2", "f1"] and total == 2
        found, total, _ = await watch.browse(search="HERO")
        assert {r.file_id for r in found} == {"f1", "f2"} and total == 2
        assert [r.file_id for r in (await watch.browse(search="o_S"))[0]] == ["f1"]
        assert [r.file_id for r in (await watch.browse(search="0% "))[0]] == ["f3"]
        assert (await watch.browse(search="f4"))[1] == 1

    @pytest.mark.anyio
    async def test_reading_counts_files_backlog_and_deferrals(self, db: Database) -> None:
        """Files by status, the revision, the oldest pending and the deferred deliveries."""
        for minutes in (0, 1):
            await db.journal.append(
                IncomingDelivery(
                    uuid.uuid4().hex, T0 + timedelta(minutes=minutes), b"{}", "file.ready", "f9"
                )
            )
        first, _ = await db.journal.pending(10, T0 + timedelta(minutes=5))
        later = T0 + timedelta(hours=1)
        await db.journal.commit(
            BatchResult(
                at=T0,
                deferred=(Deferral(first.seq, later, "Frame.io answered 503"),),
                records=(record("f1", "a.mov", 1, processing=Processing.READY),),
            )
        )
        watch = watch_of(db)
        reading = await watch.reading()
        assert reading.oldest_pending_at == T0
        assert (reading.deferred, reading.oldest_deferred_at) == (1, T0)
        assert reading.deferred_reason == "Frame.io answered 503"
        assert reading.files_by_status == {"COMPLETED": 1} and reading.revision > 0
        assert (await watch.reading(files=False)).files_by_status == {}
        await watch.check_writable(T0)


class TestSqliteWatch(WatchContract):
    """The SQLite database file."""

    open_database = staticmethod(sqlite_database)


class TestPostgresWatch(WatchContract):
    """The shared PostgreSQL database."""

    open_database = staticmethod(postgres_database)
