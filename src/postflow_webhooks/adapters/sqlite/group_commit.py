"""Group commit: many concurrent writes, one durable transaction.

Each accepted delivery must be on disk before the receiver answers, and one
fsync per request would cap throughput at the disk's sync rate. So writers
queue their work and, on the event loop's next turn, everything queued is
written in a single transaction; every waiter is woken once it commits.

The transaction runs on the event loop's own thread (see "Performance" in
``docs/architecture.md`` for why). Another process may hold the write lock for
a moment (a CLI command such as ``replay``); the writer never sleeps on the
loop for it: it tries again a moment later, the loop serving requests
meanwhile, and fails the waiting writes only after the busy timeout.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from postflow_webhooks.adapters.sqlite.connection import BUSY_TIMEOUT_MS, connect, open_database
from postflow_webhooks.adapters.sqlite.health import LOCKED, CommitTracker, storage_failure
from postflow_webhooks.domain.errors import StorageError, StorageUnavailableError
from postflow_webhooks.domain.journal import CommitFailure

R = TypeVar("R")
Call = Callable[[sqlite3.Connection], Any]
# Writes one batch of data items inside the transaction; one result per item.
CommitItems = Callable[[sqlite3.Connection, list[Any]], list[Any]]
Waiters = list[tuple[Any, asyncio.Future[Any]]]

LOCK_RETRY_SECONDS = 0.0005

# SQLITE_READONLY_DBMOVED: the file was moved or deleted; opening the path again is wrong.
_DBMOVED = 1032


class _Run:
    """A function to call with the connection inside the batch's transaction.

    ``size`` is how many bytes it writes, when that matters (a health probe).
    """

    __slots__ = ("fn", "size")

    def __init__(self, fn: Call, size: int = 0) -> None:
        self.fn = fn
        self.size = size


class GroupCommitWriter:
    """The process's one writer: commits what was queued, in batches, on the loop.

    Data items (``write``) go to ``commit_items(conn, items)`` together;
    functions (``run``) are called with the connection in the same transaction.
    ``on_items`` is called after a commit that held data items.
    """

    def __init__(
        self,
        path: Path,
        commit_items: CommitItems,
        on_items: Callable[[], None] | None = None,
    ) -> None:
        self.path = path
        self._commit_items = commit_items
        self._on_items = on_items
        self._queued: Waiters = []
        self._scheduled = False
        self._conn: sqlite3.Connection | None = None
        self._locked_since: float | None = None
        self._health = CommitTracker(path)
        # The connection said SQLITE_READONLY: it may have been opened read-only
        # (the file was not writable then), and stays so until opened again.
        self._read_only = False

    def commit_failure(self) -> CommitFailure | None:
        """Why commits fail; ``None`` once one as large as the failed one succeeds."""
        return self._health.failure

    @property
    def probe_size(self) -> int:
        """How many bytes a probe must commit to clear the failure."""
        return self._health.probe_size

    def start(self) -> None:
        """Open (and migrate) the database; ``StorageError`` if it cannot be used."""
        self._conn = open_database(self.path)
        # Never sleep on the loop for a lock held elsewhere: _flush retries instead.
        self._conn.execute("PRAGMA busy_timeout=0")

    def reopen_if_read_only(self) -> bool:
        """After ``SQLITE_READONLY``, open the file again: it may be writable by now.

        SQLite opens a file it cannot write read-only and keeps it so; without a
        new connection, commits would fail for good once the cause is gone.
        Only between batches, and only an existing file (never created anew).
        True when the connection was replaced.
        """
        old = self._conn
        if not self._read_only or old is None or old.in_transaction or self._scheduled:
            return False
        try:
            conn = connect(self.path, create=False)
            conn.execute("PRAGMA busy_timeout=0")
        except sqlite3.Error:
            return False  # still not there: the probe reports it
        self._conn, self._read_only = conn, False
        old.close()
        return True

    async def write(self, item: object) -> Any:
        """Queue a data item; its result (from ``commit_items``) once its transaction committed."""
        return await self._submit(item)

    async def run(self, fn: Callable[[sqlite3.Connection], R], size: int = 0) -> R:
        """Queue ``fn(conn)`` (writing about ``size`` bytes); its result once committed."""
        result: R = await self._submit(_Run(fn, size))
        return result

    async def _submit(self, item: object) -> Any:
        if self._conn is None:
            raise StorageUnavailableError(f"database {self.path}: not open")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._queued.append((item, future))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)
        return await future

    async def stop(self) -> None:
        """Commit what is queued (waiting for the lock now), then close the connection."""
        if self._queued and self._conn is not None:
            self._conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            self._flush()
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _flush(self) -> None:
        self._scheduled = False
        batch, self._queued = self._queued, []
        if not batch or not self._begin(batch):
            return
        conn = self._conn
        assert conn is not None
        try:
            results, had_items = self._write(conn, batch)
            conn.execute("COMMIT")
        except Exception as exc:  # the storage, one bad item, or a bug in a queued write
            self._rollback(conn)
            if storage_failure(exc) is not None or len(batch) == 1:
                self._fail(batch, exc)
            else:
                self._one_by_one(conn, batch)
            return
        self._committed(batch, results, had_items)

    def _one_by_one(self, conn: sqlite3.Connection, batch: Waiters) -> None:
        """Write each waiter of a failed batch in its own transaction: only a bad one fails."""
        for index, waiter in enumerate(batch):
            if not self._begin(batch[index:]):
                return
            try:
                results, had_items = self._write(conn, [waiter])
                conn.execute("COMMIT")
            except Exception as exc:
                self._rollback(conn)
                if storage_failure(exc) is not None:
                    self._fail(batch[index:], exc)
                    return
                self._fail([waiter], exc)
                continue
            self._committed([waiter], results, had_items)

    def _committed(self, batch: Waiters, results: list[Any], had_items: bool) -> None:
        self._health.committed(_size(batch))
        _settle(batch, results, None)
        if had_items and self._on_items is not None:
            self._on_items()

    def _fail(self, batch: Waiters, exc: BaseException) -> None:
        """Wake ``batch`` with the error: ``StorageError`` for SQLite's, else ``exc`` itself."""
        failure = storage_failure(exc)
        error: BaseException = exc
        code = getattr(exc, "sqlite_errorcode", None)
        if code is not None and code & 0xFF == sqlite3.SQLITE_READONLY and code != _DBMOVED:
            self._read_only = True
        if failure is not None:
            self._health.failed(failure, f"SQLite: {exc}", _size(batch))
            error = StorageUnavailableError(f"database {self.path}: {exc}")
        elif isinstance(exc, sqlite3.Error):
            error = StorageError(f"database {self.path}: {exc}")
        _settle(batch, [], error)

    def _rollback(self, conn: sqlite3.Connection) -> None:
        try:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
        except sqlite3.Error:  # SQLite rolled back itself (disk full, I/O error)
            pass

    def _write(self, conn: sqlite3.Connection, batch: Waiters) -> tuple[list[Any], bool]:
        data = [item for item, _ in batch if not isinstance(item, _Run)]
        data_results = iter(self._commit_items(conn, data) if data else [])
        results = []
        for item, _ in batch:
            if isinstance(item, _Run):
                results.append(item.fn(conn))
            else:
                results.append(next(data_results, None))
        return results, bool(data)

    def _begin(self, batch: Waiters) -> bool:
        """Take the write lock for ``batch``; if another process has it, retry later."""
        try:
            if self._conn is None:
                raise sqlite3.OperationalError("the database was closed")
            self._conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if self._conn is not None and _is_busy(exc):
                return self._retry_later(batch)
            self._fail(batch, exc)
            return False
        except sqlite3.Error as exc:
            self._fail(batch, exc)
            return False
        self._locked_since = None
        return True

    def _retry_later(self, batch: Waiters) -> bool:
        loop = asyncio.get_running_loop()
        now = loop.time()
        if self._locked_since is None:
            self._locked_since = now
        elif now - self._locked_since > BUSY_TIMEOUT_MS / 1000:
            self._locked_since = None
            held = f"another process has held the write lock for over {BUSY_TIMEOUT_MS / 1000:g} s"
            self._health.failed(LOCKED, held, _size(batch))
            _settle(batch, [], StorageUnavailableError(f"database {self.path}: {held}"))
            return False
        self._queued = batch + self._queued
        if not self._scheduled:
            self._scheduled = True
            loop.call_later(LOCK_RETRY_SECONDS, self._flush)
        return False


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    return "locked" in str(exc) or "busy" in str(exc)


def _size(batch: Waiters) -> int:
    """The bytes a batch writes: its delivery bodies and sized functions."""
    return sum(
        item.size if isinstance(item, _Run) else len(getattr(item, "body", b""))
        for item, _ in batch
    )


def _settle(batch: Waiters, results: list[Any], error: BaseException | None) -> None:
    """Wake every waiter of ``batch`` with its result, or with ``error``."""
    for index, (_, future) in enumerate(batch):
        if future.done():
            continue
        if error is None:
            future.set_result(results[index])
        else:
            future.set_exception(error)
