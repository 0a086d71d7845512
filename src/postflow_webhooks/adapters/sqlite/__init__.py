"""SQLite: the one database file holding deliveries, records and the outbox."""

from postflow_webhooks.adapters.sqlite.database import DATABASE_NAME, SqliteDatabase
from postflow_webhooks.adapters.sqlite.journal import SqliteJournal
from postflow_webhooks.adapters.sqlite.outbox import SqliteOutbox
from postflow_webhooks.adapters.sqlite.records import SqliteRecords

__all__ = ["DATABASE_NAME", "SqliteDatabase", "SqliteJournal", "SqliteOutbox", "SqliteRecords"]
