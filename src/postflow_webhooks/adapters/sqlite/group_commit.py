"""Group commit: many concurrent requests, one durable transaction.

Each accepted delivery must be on disk before the receiver answers. One fsync
per request would cap throughput at the disk's sync rate, so requests queue
their writes and one thread commits everything queued in a single
transaction, then wakes every waiter. Under load batches grow by themselves;
an idle request still commits at once.
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

from postflow_webhooks.adapters.sqlite.connection import Transaction, open_database
from postflow_webhooks.domain.errors import StorageError

Write = Callable[[sqlite3.Connection], None]
_Item = tuple[Write, asyncio.Future[None], asyncio.AbstractEventLoop]

MAX_BATCH = 1024
# How long the writer waits for company after the first write of a batch.
# Under load it turns many one-write transactions into few large ones; when
# idle it adds at most this much to an answer's latency.
LINGER_SECONDS = float(os.environ.get("POSTFLOW_GROUP_COMMIT_LINGER", "0.001"))


class GroupCommitWriter:
    """A thread that commits queued writes in batches and reports each outcome."""

    def __init__(
        self,
        path: Path,
        on_commit: Callable[[], None] | None = None,
        *,
        linger: float = LINGER_SECONDS,
    ) -> None:
        self.path = path
        self._linger = linger
        self._on_commit = on_commit
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
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

    async def write(self, fn: Write) -> None:
        """Queue ``fn`` and return once the transaction holding it committed."""
        if self._thread is None:
            raise StorageError("the journal writer is not running")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._queue.put((fn, future, loop))
        await future

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
                        if wait > 0:
                            item = self._queue.get(timeout=wait)
                        else:
                            item = self._queue.get_nowait()
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

    def _commit(self, conn: sqlite3.Connection, batch: list[_Item]) -> None:
        error: BaseException | None = None
        try:
            with Transaction(conn):
                for fn, _, _ in batch:
                    fn(conn)
        except sqlite3.Error as exc:
            error = StorageError(f"database {self.path}: {exc}")
        by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
        for _, future, loop in batch:
            by_loop.setdefault(loop, []).append(future)
        for loop, futures in by_loop.items():
            loop.call_soon_threadsafe(_settle, futures, error)
        if error is None and self._on_commit is not None:
            self._on_commit()


def _settle(futures: list[asyncio.Future[None]], error: BaseException | None) -> None:
    for future in futures:
        if future.done():
            continue
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)
