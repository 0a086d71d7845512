"""The databases the contract suites run against, each seen through its roles.

A contract test asks for ``journal`` (the delivery roles), ``records`` (the
tracked files and the tracker feed) and ``outbox`` (notifications, dead letters,
destinations) of one database; ``restart`` closes and reopens it, as a restart
of the receiver does, so a test can check what survives.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from postflow_webhooks.adapters.memory import MemoryDatabase
from postflow_webhooks.adapters.postgres import (
    PostgresDatabase,
    PostgresJournal,
    PostgresOutbox,
    PostgresRecords,
)
from postflow_webhooks.adapters.sqlite import (
    SqliteDatabase,
    SqliteJournal,
    SqliteOutbox,
    SqliteRecords,
)
from postflow_webhooks.domain.ports import (
    Counters,
    DeadLetters,
    DeliveryDesk,
    DeliveryInbox,
    DeliveryQueue,
    DestinationStates,
    NotificationOutbox,
    RecordStore,
    Retention,
    TrackerFeed,
)
from tests.postgres import create_database, drop_database


class JournalRoles(DeliveryInbox, DeliveryQueue, DeliveryDesk, Retention, Counters, Protocol):
    """Every role the deliveries' side of a database plays."""


class RecordRoles(RecordStore, TrackerFeed, Protocol):
    """Every role the tracked files' side of a database plays."""


class OutboxRoles(NotificationOutbox, DeadLetters, DestinationStates, Protocol):
    """Every role the notifications' side of a database plays."""


class Database:
    """One database, by role. Subclasses say how it is opened, closed and reopened."""

    journal: JournalRoles
    records: RecordRoles
    outbox: OutboxRoles

    async def restart(self) -> None:
        """Close and reopen, as a restart of the receiver does; the roles are replaced."""
        raise NotImplementedError

    async def close(self) -> None:
        """Release the database."""
        raise NotImplementedError


class MemoryRoles(Database):
    """``MemoryDatabase`` plays every role; a restart keeps the same object."""

    def __init__(self) -> None:
        self.db = MemoryDatabase()
        self.journal = self.records = self.outbox = self.db

    async def restart(self) -> None:
        """Nothing to reopen: the memory fake lives as long as the process."""

    async def close(self) -> None:
        """Nothing to release."""


class SqliteRoles(Database):
    """The SQLite database file, through ``SqliteJournal``, ``SqliteRecords`` and ``SqliteOutbox``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._open()

    def _open(self) -> None:
        self.db = SqliteDatabase(self.path)
        self.db.open()
        self.journal = SqliteJournal(self.db)
        self.records = SqliteRecords(self.db)
        self.outbox = SqliteOutbox(self.db)

    async def restart(self) -> None:
        """Close the file and open it again with fresh adapters."""
        await self.db.close()
        self._open()

    async def close(self) -> None:
        """Close the file."""
        await self.db.close()


def memory_database(tmp_path: Path) -> Database:
    """A fresh memory database."""
    return MemoryRoles()


def sqlite_database(tmp_path: Path) -> Database:
    """A fresh SQLite database file in ``tmp_path``."""
    return SqliteRoles(tmp_path / "postflow.sqlite3")


class PostgresTables(Database):
    """A PostgreSQL database of the test's own, through the three PostgreSQL adapters."""

    def __init__(self) -> None:
        self.url = create_database()
        self._open()

    def _open(self) -> None:
        self.db = PostgresDatabase(self.url)
        self.db.open()
        self.journal = PostgresJournal(self.db)
        self.records = PostgresRecords(self.db)
        self.outbox = PostgresOutbox(self.db)

    async def restart(self) -> None:
        """Close the pool and open the same database again with fresh adapters."""
        await self.db.close()
        self._open()

    async def close(self) -> None:
        """Close the pool and drop the database."""
        try:
            await self.db.close()
        finally:
            drop_database(self.url)


def postgres_database(tmp_path: Path) -> Database:
    """A fresh PostgreSQL database (skipped, loudly, when no server answers)."""
    return PostgresTables()
