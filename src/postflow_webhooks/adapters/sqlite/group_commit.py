"""Group commit: many concurrent requests, one durable transaction.

Each accepted delivery must be on disk before the receiver answers. One fsync
per request would cap throughput at the disk's sync rate, so requests queue
their writes and, on the event loop's next turn (or ``LINGER_SECONDS``
later), everything queued is written in a single transaction and every waiter
is woken once it commits.

The whole transaction, commit included, runs on the event loop's own thread.
A writer thread would have to win the interpreter lock back from the loop
after every SQLite call, and under load that hand-over, not the disk, is what
a request would wait for. Handing only the ``COMMIT`` to a thread was
measured too: the same throughput for more CPU (a thread wake-up and a lock
hand-over per batch). Blocking the loop for one batched commit (about half a
millisecond here) is the cheaper price.

Each database file has one such writer in the process that owns it; in that
process everything written to the file queues here. Another process may
still hold the file's write lock for a moment (a CLI command, or the worker
pruning the inbox); the writer never sleeps on the loop waiting for it. It tries once, and if the
lock is taken it tries again a moment later (``LOCK_RETRY_SECONDS``), the loop
serving requests meanwhile. Only after ``LOCK_PATIENCE_SECONDS`` of a lock
held elsewhere do the waiting writes fail (the receiver then answers 503).
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from postflow_webhooks.adapters.sqlite.connection import open_database
from postflow_webhooks.adapters.sqlite.schema import SCHEMA
from postflow_webhooks.domain.errors import StorageError

R = TypeVar("R")
Call = Callable[[sqlite3.Connection], Any]
# Writes one batch of data items inside the transaction; one result per item.
CommitBatch = Callable[[sqlite3.Connection, list[Any]], list[Any]]
Waiters = list[tuple[Any, asyncio.Future[Any]]]

# How long the first write of a batch waits for company. None by default: the
# flush runs on the loop's next turn, and under load the requests that arrived
# while the previous commit synced are already there to join it (measured: any
# wait from 0.2 to 3 ms gave fewer requests per second, not more).
LINGER_SECONDS = float(os.environ.get("POSTFLOW_GROUP_COMMIT_LINGER", "0"))
# While another process holds the write lock: how often to try again, and for how long.
LOCK_RETRY_SECONDS = 0.0005
LOCK_PATIENCE_SECONDS = 10.0


class _Run:
    """A function to call with the connection inside the batch's transaction."""

    __slots__ = ("fn",)

    def __init__(self, fn: Call) -> None:
        self.fn = fn


class GroupCommitWriter:
    """Its process's writer: commits what was queued, in batches, on the loop.

    Data items go to ``commit_batch(conn, items)``; functions queued with
    ``run`` are called with the connection in the same transaction.
    """

    def __init__(
        self,
        path: Path,
        commit_batch: CommitBatch,
        on_commit: Callable[[], None] | None = None,
        *,
        linger: float = LINGER_SECONDS,
        schema: str = SCHEMA,
    ) -> None:
        self.path = path
        self._schema = schema
        self._commit_batch = commit_batch
        self._on_commit = on_commit
        self._linger = linger
        self._queued: Waiters = []
        self._timer: asyncio.TimerHandle | None = None
        self._conn: sqlite3.Connection | None = None
        self._locked_since: float | None = None

    def start(self) -> None:
        """Open the connection; raise ``StorageError`` if the database cannot be used."""
        self._conn = open_database(self.path, schema=self._schema)
        # Never sleep on the loop for a lock held elsewhere: _flush retries instead.
        self._conn.execute("PRAGMA busy_timeout=0")

    async def write(self, item: object) -> None:
        """Queue a data item; return once the transaction holding it committed."""
        await self._submit(item)

    async def run(self, fn: Callable[[sqlite3.Connection], R]) -> R:
        """Queue ``fn(conn)``; return its result once its transaction committed."""
        result: R = await self._submit(_Run(fn))
        return result

    async def _submit(self, item: object) -> Any:
        if self._conn is None:
            raise StorageError("the journal is not open")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._queued.append((item, future))
        if self._timer is None:
            self._timer = loop.call_later(self._linger, self._flush)
        return await future

    async def stop(self) -> None:
        """Commit what is queued, then close the connection."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._queued and self._conn is not None:
            # Shutting down: waiting on the lock is fine now, losing writes is not.
            self._conn.execute(f"PRAGMA busy_timeout={int(LOCK_PATIENCE_SECONDS * 1000)}")
            self._flush()
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _flush(self) -> None:
        self._timer = None
        batch, self._queued = self._queued, []
        if not batch or not self._begin(batch):
            return
        conn = self._conn
        assert conn is not None
        try:
            results = self._write(conn, batch)
            conn.execute("COMMIT")
        except Exception as exc:  # a SQLite error, or a bug in a queued write
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            sqlite_error = isinstance(exc, sqlite3.Error)
            error = StorageError(f"database {self.path}: {exc}") if sqlite_error else exc
            _settle(batch, [], error)
            return
        _settle(batch, results, None)
        if self._on_commit is not None:
            self._on_commit()

    def _write(self, conn: sqlite3.Connection, batch: Waiters) -> list[Any]:
        data = [item for item, _ in batch if not isinstance(item, _Run)]
        data_results = iter(self._commit_batch(conn, data) if data else [])
        results = []
        for item, _ in batch:
            if isinstance(item, _Run):
                results.append(item.fn(conn))
            else:
                results.append(next(data_results, None))
        return results

    def _begin(self, batch: Waiters) -> bool:
        """Take the write lock for ``batch``; if another process has it, retry later."""
        try:
            if self._conn is None:
                raise sqlite3.OperationalError("the journal was closed")
            self._conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if self._conn is not None and _is_busy(exc):
                return self._retry_later(batch)
            _settle(batch, [], StorageError(f"database {self.path}: {exc}"))
            return False
        except sqlite3.Error as exc:
            _settle(batch, [], StorageError(f"database {self.path}: {exc}"))
            return False
        self._locked_since = None
        return True

    def _retry_later(self, batch: Waiters) -> bool:
        loop = asyncio.get_running_loop()
        now = loop.time()
        if self._locked_since is None:
            self._locked_since = now
        elif now - self._locked_since > LOCK_PATIENCE_SECONDS:
            self._locked_since = None
            held = StorageError(
                f"database {self.path}: another process has held the write lock "
                f"for over {LOCK_PATIENCE_SECONDS:.0f} s"
            )
            _settle(batch, [], held)
            return False
        self._queued = batch + self._queued
        if self._timer is None:
            self._timer = loop.call_later(LOCK_RETRY_SECONDS, self._flush)
        return False


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    return "locked" in str(exc) or "busy" in str(exc)


def _settle(batch: Waiters, results: list[Any], error: BaseException | None) -> None:
    """Wake every waiter of ``batch`` with its result, or with ``error``."""
    for index, (_, future) in enumerate(batch):
        if future.done():
            continue
        if error is None:
            future.set_result(results[index])
        else:
            future.set_exception(error)
