"""Opening the database durably, and a read connection on a thread of its own.

Every connection is in WAL mode with ``synchronous=FULL``: a commit is on disk
when it returns. The writer opens the file first and brings its layout up to
date (``schema.migrate``); reads run on a second connection, on one dedicated
thread, so a long read never holds the event loop.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from postflow_webhooks.adapters.sqlite.damage import check_pages, unusable
from postflow_webhooks.adapters.sqlite.export import refuse_if_moved
from postflow_webhooks.adapters.sqlite.schema import migrate
from postflow_webhooks.domain.errors import StorageError

T = TypeVar("T")

BUSY_TIMEOUT_MS = 10_000


def connect(path: Path, *, create: bool = True) -> sqlite3.Connection:
    """A connection with the durable settings; the file must exist or (``create``) be creatable.

    SQLite opens a file it cannot write read-only, silently: every write then
    fails with ``SQLITE_READONLY`` until the file is opened again.
    """
    # Used by one thread at a time, but not always the one that opened it: the
    # facade opens the database in PostFlow's thread, then serves in its own.
    target: str | Path = path if create else f"{path.resolve().as_uri()}?mode=rw"
    conn = sqlite3.connect(
        target,
        isolation_level=None,
        timeout=BUSY_TIMEOUT_MS / 1000,
        check_same_thread=False,
        uri=not create,
    )
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    return conn


def open_database(path: Path) -> sqlite3.Connection:
    """Open (creating if needed), check and migrate the database; ``StorageError`` naming the fix.

    A file that cannot be opened, or whose pages do not all read, is refused
    and left untouched (``damage.py``).
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = connect(path)
    except (OSError, sqlite3.Error) as exc:
        raise unusable(path, exc) from exc
    try:
        check_pages(conn, path)
        migrate(conn, path)
        refuse_if_moved(conn, path)
    except sqlite3.Error as exc:
        conn.close()
        raise unusable(path, exc) from exc
    except BaseException:
        conn.close()
        raise
    return conn


class Transaction:
    """``with Transaction(conn):`` runs the block in ``BEGIN IMMEDIATE`` … ``COMMIT``."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self._conn.execute("BEGIN IMMEDIATE")
        return self._conn

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self._conn.execute("COMMIT")
        else:
            self._conn.execute("ROLLBACK")


class SqliteReader:
    """A read connection on its own thread; ``run`` calls a function with it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-reads")
        self._conn: sqlite3.Connection | None = None

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(conn)`` on the reader's thread; SQLite errors become ``StorageError``."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._call, fn)

    def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        try:
            if self._conn is None:
                self._conn = connect(self.path)
            return fn(self._conn)
        except sqlite3.Error as exc:
            raise StorageError(f"database {self.path}: {exc}") from exc

    async def close(self) -> None:
        """Close the connection and stop the thread."""

        def close(_: sqlite3.Connection) -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        if self._conn is not None:
            await self.run(close)
        self._pool.shutdown(wait=True)
