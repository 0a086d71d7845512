"""Group commit: many concurrent requests, one durable transaction.

Each accepted delivery must be on disk before the receiver answers. One fsync
per request would cap throughput at the disk's sync rate, so requests queue
their writes and one thread commits everything queued in a single
transaction, then wakes every waiter. Under load batches grow by themselves.

This thread is also the journal's only writer: the worker's passes and the
notifier's updates queue here too. Two writing connections would contend
for SQLite's lock, and a connection that finds it taken sleeps for
milliseconds, which is what a receiver under load cannot afford.
"""

from __future__ import annotations

import asyncio
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from postflow_webhooks.adapters.sqlite.connection import Transaction, open_database
from postflow_webhooks.domain.errors import StorageError

R = TypeVar("R")
Call = Callable[[sqlite3.Connection], Any]
# Writes one batch inside the transaction; returns one result per item.
CommitBatch = Callable[[sqlite3.Connection, list[Any]], list[Any]]
_Queued = tuple[Any, asyncio.Future[Any], asyncio.AbstractEventLoop]

MAX_BATCH = 1024
# How long the writer waits for company after the first write of a batch.
# Under load it turns many one-write transactions into few large ones; when
# idle it adds at most this much to an answer's latency.
LINGER_SECONDS = float(os.environ.get("POSTFLOW_GROUP_COMMIT_LINGER", "0.001"))


class _Run:
    """A function to call with the connection inside the batch's transaction."""

    __slots__ = ("fn",)

    def __init__(self, fn: Call) -> None:
        self.fn = fn


class GroupCommitWriter:
    """The database's only writer: a thread that commits queued items in batches.

    Data items go to ``commit_batch(conn, items)``; functions queued with
    ``run`` are called with the connection. Everything queued together shares
    one transaction, so no two connections ever fight over the write lock.
    """

    def __init__(
        self,
        path: Path,
        commit_batch: CommitBatch,
        on_commit: Callable[[], None] | None = None,
        *,
        linger: float = LINGER_SECONDS,
    ) -> None:
        self.path = path
        self._commit_batch = commit_batch
        self._linger = linger
        self._on_commit = on_commit
        self._queue: queue.SimpleQueue[_Queued | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._open_error: BaseException | None = None

    def start(self) -> None:
        """Open the connection on the writer thread; raise ``StorageError`` if it cannot."""
        self._thread = threading.Thread(target=self._run, name="journal-writer", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._open_error is not None:
            raise StorageError(str(self._open_error))

    async def write(self, item: object) -> None:
        """Queue a data item; return once the transaction holding it committed."""
        await self._submit(item)

    async def run(self, fn: Callable[[sqlite3.Connection], R]) -> R:
        """Queue ``fn(conn)``; return its result once its transaction committed."""
        result: R = await self._submit(_Run(fn))
        return result

    async def _submit(self, item: object) -> Any:
        if self._thread is None:
            raise StorageError("the journal writer is not running")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._queue.put((item, future, loop))
        return await future

    def stop(self) -> None:
        """Commit what is queued, then stop the thread."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        try:
            conn = open_database(self.path)
        except StorageError as exc:
            self._open_error = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            while True:
                first = self._queue.get()
                if first is None:
                    return
                batch = [first]
                stopping = False
                deadline = time.monotonic() + self._linger
                while len(batch) < MAX_BATCH:
                    try:
                        wait = deadline - time.monotonic()
                        item = (
                            self._queue.get(timeout=wait) if wait > 0 else self._queue.get_nowait()
                        )
                    except queue.Empty:
                        break
                    if item is None:
                        stopping = True
                        break
                    batch.append(item)
                self._commit(conn, batch)
                if stopping:
                    return
        finally:
            conn.close()

    def _commit(self, conn: sqlite3.Connection, batch: list[_Queued]) -> None:
        error: BaseException | None = None
        results: list[Any] = []
        try:
            with Transaction(conn):
                data = [item for item, _, _ in batch if not isinstance(item, _Run)]
                data_results = iter(self._commit_batch(conn, data) if data else [])
                for item, _, _ in batch:
                    if isinstance(item, _Run):
                        results.append(item.fn(conn))
                    else:
                        results.append(next(data_results, None))
        except sqlite3.Error as exc:
            error = StorageError(f"database {self.path}: {exc}")
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], Any]]] = {}
        for index, (_, future, loop) in enumerate(batch):
            value = None if error else results[index]
            by_loop.setdefault(loop, []).append((future, value))
        for loop, settled in by_loop.items():
            loop.call_soon_threadsafe(_settle, settled, error)
        if error is None and self._on_commit is not None:
            self._on_commit()


def _settle(settled: list[tuple[asyncio.Future[Any], Any]], error: BaseException | None) -> None:
    for future, value in settled:
        if future.done():
            continue
        if error is None:
            future.set_result(value)
        else:
            future.set_exception(error)
