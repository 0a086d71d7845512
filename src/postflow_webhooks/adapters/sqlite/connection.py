"""Opening SQLite durably, and running a connection on its own thread.

Every connection is in WAL mode with ``synchronous=FULL``: a commit is on disk
when it returns. A connection lives on one dedicated thread; async callers hop
onto it with ``SqliteThread.run``.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from postflow_webhooks.adapters.sqlite.schema import SCHEMA
from postflow_webhooks.domain.errors import StorageError

T = TypeVar("T")


def open_database(path: Path, *, shared: bool = False, schema: str = SCHEMA) -> sqlite3.Connection:
    """Open (creating if needed) the database with durable settings and ``schema``.

    ``shared``: the caller uses the connection from more than one thread, one
    call at a time (the group-commit writer commits on a thread of its own).
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, isolation_level=None, timeout=10.0)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA busy_timeout=10000")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.executescript(schema)
    except (OSError, sqlite3.Error) as exc:
        raise StorageError(f"cannot open the database {path}: {exc}") from exc
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


class SqliteThread:
    """One connection on one thread; ``run`` calls a function with it."""

    def __init__(self, path: Path, name: str, *, schema: str = SCHEMA) -> None:
        self.path = path
        self._schema = schema
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._conn: sqlite3.Connection | None = None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            self._conn = open_database(self.path, schema=self._schema)
        return self._conn

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(conn)`` on the connection's thread; SQLite errors become ``StorageError``."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._call, fn)

    def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        try:
            return fn(self._connection())
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
