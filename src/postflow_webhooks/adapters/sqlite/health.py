"""Whether the database takes commits: SQLite's errors sorted, and the last failure kept.

A failure of the storage itself (disk full, read-only, I/O error, locked past
patience) is kept until a commit at least as large as the one that failed
goes through, so a small write slipping into a nearly full disk does not
report health too early. While it is kept, ``SqliteDatabase.recheck`` commits
a probe of that size about once a second, so health recovers by itself once
the cause is gone, with or without traffic. After ``SQLITE_READONLY`` the
probe runs on the file opened again: SQLite opens a file it cannot write
read-only, and that connection would stay read-only for good.
"""

from __future__ import annotations

import logging
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from postflow_webhooks.domain.endpoint import MAX_BODY_BYTES
from postflow_webhooks.domain.journal import CommitFailure

log = logging.getLogger("postflow_webhooks.storage")

# A probe never writes more than this (a batch of many deliveries may have failed).
MAX_PROBE_BYTES = 2 * MAX_BODY_BYTES
MIN_PROBE_BYTES = 4096

# SQLite's primary result codes that mean the storage itself fails, not one item.
STORAGE_CODES = {
    sqlite3.SQLITE_FULL: ("disk_full", "the disk is full (or the file hit its size limit)"),
    sqlite3.SQLITE_READONLY: ("read_only", "the database cannot be written (read-only)"),
    sqlite3.SQLITE_PERM: ("read_only", "the database cannot be written (permission denied)"),
    sqlite3.SQLITE_IOERR: (
        "io_error",
        "disk I/O error (a failing disk, or a read-only file system?)",
    ),
    sqlite3.SQLITE_BUSY: ("locked", "the database is locked by another program"),
    sqlite3.SQLITE_LOCKED: ("locked", "the database is locked"),
    sqlite3.SQLITE_PROTOCOL: ("locked", "the database's lock protocol failed"),
    sqlite3.SQLITE_CORRUPT: ("damaged", "the database file is damaged"),
    sqlite3.SQLITE_NOTADB: ("damaged", "the database file is damaged"),
    sqlite3.SQLITE_CANTOPEN: ("cannot_open", "the database file cannot be opened"),
    sqlite3.SQLITE_NOMEM: ("out_of_memory", "SQLite ran out of memory"),
}
LOCKED = STORAGE_CODES[sqlite3.SQLITE_BUSY]


def storage_failure(exc: BaseException) -> tuple[str, str] | None:
    """``(reason, explanation)`` when ``exc`` says the storage fails; ``None`` for a bad item."""
    if not isinstance(exc, sqlite3.Error):
        return None
    code = getattr(exc, "sqlite_errorcode", None)
    if code is None:
        if isinstance(exc, sqlite3.OperationalError):
            return ("unavailable", "the database cannot be written")
        return None
    return STORAGE_CODES.get(code & 0xFF)


class CommitTracker:
    """The last storage failure of one database file, and the size that must commit to clear it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.failure: CommitFailure | None = None
        self._size = 0

    @property
    def probe_size(self) -> int:
        """How many bytes a probe must commit to show the cause is gone."""
        return min(max(self._size, MIN_PROBE_BYTES), MAX_PROBE_BYTES)

    def failed(self, failure: tuple[str, str], detail: str, size: int) -> None:
        """A commit of ``size`` bytes failed because of the storage."""
        reason, explanation = failure
        if self.failure is None:
            log.error("the database %s takes no commit (%s): %s", self.path, reason, detail)
            self._size = 0
        since = self.failure.since if self.failure is not None else datetime.now(UTC)
        self.failure = CommitFailure(reason, f"{explanation} ({detail})", since)
        self._size = max(self._size, size)

    def committed(self, size: int) -> None:
        """A commit of ``size`` bytes went through; clears a failure it is large enough to refute."""
        if self.failure is None or size < min(self._size, MAX_PROBE_BYTES):
            return
        down = (datetime.now(UTC) - self.failure.since).total_seconds()
        log.info("the database %s takes commits again (after %.0f s)", self.path, down)
        self.failure = None
