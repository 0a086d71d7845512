"""Replayed signatures and bounded event types: one contract for memory, SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from postflow_webhooks.domain.endpoint import MAX_EVENT_TYPES_SHOWN, MAX_SKEW_SECONDS
from postflow_webhooks.domain.journal import IncomingDelivery
from tests.contract.databases import (
    Database,
    memory_database,
    postgres_database,
    sqlite_database,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def signed(
    digest: bytes, timestamp: int, at: datetime = T0, event_type: str = "file.ready"
) -> IncomingDelivery:
    """A signed delivery with this signature digest and timestamp."""
    return IncomingDelivery(
        delivery_id=uuid.uuid4().hex,
        received_at=at,
        body=b'{"type": "file.ready", "resource": {"id": "f"}}',
        event_type=event_type,
        file_id="f",
        signed=True,
        signature=digest,
        timestamp=timestamp,
    )


class ReplayContract:
    """Every database remembers accepted signatures for the window, and bounds its type counts."""

    open_database: Callable[[Path], Database]

    @pytest.fixture
    async def db(self, tmp_path: Path) -> AsyncIterator[Database]:
        """A fresh database, closed after the test."""
        opened = type(self).open_database(tmp_path)
        yield opened
        await opened.close()

    @pytest.mark.anyio
    async def test_a_replayed_signature_is_not_stored_again(self, db: Database) -> None:
        """The same (signature, timestamp) again: the first id back, one delivery kept, counted."""
        stamp = int(T0.timestamp())
        first = signed(b"\x01" * 32, stamp)
        assert await db.journal.append(first) is None
        again = signed(b"\x01" * 32, stamp, at=T0 + timedelta(seconds=100))
        assert await db.journal.append(again) == first.delivery_id
        stats = await db.journal.stats()
        assert (stats.total_events, stats.backlog, stats.duplicates) == (1, 1, 1)

    @pytest.mark.anyio
    async def test_another_timestamp_or_signature_is_a_new_delivery(self, db: Database) -> None:
        """Only the exact pair is a replay; unsigned deliveries are never one."""
        stamp = int(T0.timestamp())
        sent = [
            signed(b"\x01" * 32, stamp),
            signed(b"\x01" * 32, stamp + 1),
            signed(b"\x02" * 32, stamp),
            IncomingDelivery(uuid.uuid4().hex, T0, b"{}", "file.ready", "f"),
            IncomingDelivery(uuid.uuid4().hex, T0, b"{}", "file.ready", "f"),
        ]
        assert [await db.journal.append(item) for item in sent] == [None] * 5
        assert (await db.journal.stats()).backlog == 5

    @pytest.mark.anyio
    async def test_signatures_are_forgotten_after_the_window(self, db: Database) -> None:
        """Past the window (when the receiver refuses the timestamp anyway) the pair is pruned."""
        stamp = int(T0.timestamp())
        await db.journal.append(signed(b"\x01" * 32, stamp))
        later = T0 + timedelta(seconds=MAX_SKEW_SECONDS + 60)
        await db.journal.append(signed(b"\x09" * 32, int(later.timestamp()), at=later))
        # Only a store that forgot the first pair takes it as new.
        assert await db.journal.append(signed(b"\x01" * 32, stamp, at=later)) is None

    @pytest.mark.anyio
    async def test_event_types_beyond_the_bound_are_summed_as_other(self, db: Database) -> None:
        """The most frequent types are listed by name; the rest are one 'other' count."""
        for _ in range(3):
            await db.journal.append(signed_free("file.ready"))
        extra = MAX_EVENT_TYPES_SHOWN + 10
        for index in range(extra):
            await db.journal.append(signed_free(f"custom.{index:03d}"))
        by_type = (await db.journal.stats()).events_by_type
        assert len(by_type) == MAX_EVENT_TYPES_SHOWN + 1
        assert by_type["file.ready"] == 3
        assert sum(by_type.values()) == 3 + extra
        assert by_type["other"] == extra - (MAX_EVENT_TYPES_SHOWN - 1)


def signed_free(event_type: str) -> IncomingDelivery:
    """An unsigned delivery of ``event_type``."""
    return IncomingDelivery(uuid.uuid4().hex, T0, b"{}", event_type, "f")


class TestMemoryReplays(ReplayContract):
    """The memory fake."""

    open_database = staticmethod(memory_database)


class TestSqliteReplays(ReplayContract):
    """The SQLite database file."""

    open_database = staticmethod(sqlite_database)


class TestPostgresReplays(ReplayContract):
    """The shared PostgreSQL database."""

    open_database = staticmethod(postgres_database)
