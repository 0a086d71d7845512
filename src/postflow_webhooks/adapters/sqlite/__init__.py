"""SQLite adapters: the delivery journal with its outbox, and the upload store."""

from postflow_webhooks.adapters.sqlite.journal import SqliteJournal
from postflow_webhooks.adapters.sqlite.store import SqliteUploadStore

__all__ = ["SqliteJournal", "SqliteUploadStore"]
