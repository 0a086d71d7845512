"""``PostgresDatabase``: one PostgreSQL database shared by every receiver, through a pool.

Everything durable lives there: deliveries and their counters, the tracked
files, the notification outbox, the destinations' state. ``open`` (sync, like
SQLite's) creates or migrates the tables; the connection pool opens on first
use inside the event loop. Accepted deliveries are group-committed: what the
receiver queued during one commit goes in the next, in one transaction, and
each waiter is answered once its rows are committed (``synchronous_commit=on``).
A commit of deliveries also sends ``NOTIFY postflow_deliveries`` (delivered at
commit), which wakes the receiver holding the worker role, wherever it runs.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from postflow_webhooks.adapters.postgres.connection import conninfo, redact, storage_error
from postflow_webhooks.adapters.postgres.schema import migrate
from postflow_webhooks.domain.errors import StorageError
from postflow_webhooks.domain.journal import IncomingDelivery

T = TypeVar("T")
Conn = psycopg.AsyncConnection[Any]

DELIVERIES_CHANNEL = "postflow_deliveries"
OUTBOX_CHANNEL = "postflow_outbox"
POOL_SIZE = 4
POOL_TIMEOUT = 10.0

_BUMP = (
    "INSERT INTO counters (kind, key, value) VALUES (%s, %s, %s) "
    "ON CONFLICT (kind, key) DO UPDATE SET value = counters.value + excluded.value"
)

# Changes nobody rang about (replay from another process, a lost NOTIFY): cheap, indexed.
_FINGERPRINT = """
SELECT (SELECT coalesce(max(seq), 0) FROM deliveries),
       (SELECT count(*) FROM deliveries WHERE state = 'pending'),
       (SELECT coalesce(max(id), 0) FROM notifications),
       (SELECT count(*) FROM notifications WHERE state = 'pending')
"""


async def _commit_ingress(conn: Conn, items: list[IncomingDelivery | str]) -> bool:
    """One batch of the receivers' writes: deliveries (counted) and refusals; True if any delivery."""
    counts: Counter[tuple[str, str]] = Counter()
    rows = []
    for item in items:
        if isinstance(item, IncomingDelivery):
            rows.append(
                (
                    item.delivery_id,
                    item.received_at,
                    item.event_type,
                    item.file_id,
                    item.body,
                    item.signed,
                )
            )
            counts["total", ""] += 1
            counts["event_type", item.event_type] += 1
        else:
            counts["rejection", item] += 1
    async with conn.cursor() as cur:
        if rows:
            await cur.executemany(
                "INSERT INTO deliveries (delivery_id, received_at, event_type, file_id, body, "
                "signed) VALUES (%s, %s, %s, %s, %s, %s)",
                rows,
            )
        # Always in the same key order, so two receivers' batches never deadlock.
        await cur.executemany(_BUMP, [(k, key, n) for (k, key), n in sorted(counts.items())])
        if rows:
            await cur.execute(f"NOTIFY {DELIVERIES_CHANNEL}")
    return bool(rows)


class PostgresDatabase:
    """The shared database: ``write`` runs in a transaction, ``read`` on a pooled connection."""

    def __init__(
        self, url: str, *, pool_size: int = POOL_SIZE, application_name: str = "postflow-webhooks"
    ) -> None:
        self._url = url
        self._conninfo = conninfo(url, application_name)
        self.label = redact(url)
        self.on_deliveries: Callable[[], None] | None = None
        self._pool_size = pool_size
        self._pool: AsyncConnectionPool[Conn] | None = None
        self._pool_lock: asyncio.Lock | None = None
        self._queued: list[tuple[IncomingDelivery | str, asyncio.Future[None]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._fingerprint: tuple[int, ...] | None = None

    def __repr__(self) -> str:
        return f"PostgresDatabase({self.label})"

    @property
    def conninfo(self) -> str:
        """The connection string with our session settings (holds the password: never log it)."""
        return self._conninfo

    def open(self) -> None:
        """Create or migrate the tables; ``StorageError`` naming the database and the fix."""
        try:
            with psycopg.connect(self._conninfo, autocommit=True) as conn:
                migrate(conn, self.label)
        except psycopg.Error as exc:
            raise StorageError(
                f"cannot open the database {self.label}: {storage_error(self.label, exc)}. "
                "Check that PostgreSQL runs and that POSTFLOW_DATABASE_URL (or --database-url) "
                "names a database this user may create tables in"
            ) from None

    async def _connections(self) -> AsyncConnectionPool[Conn]:
        if self._pool is not None:
            return self._pool
        if self._pool_lock is None:
            self._pool_lock = asyncio.Lock()
        async with self._pool_lock:
            if self._pool is None:
                pool: AsyncConnectionPool[Conn] = AsyncConnectionPool(
                    self._conninfo,
                    min_size=1,
                    max_size=self._pool_size,
                    kwargs={"autocommit": True},
                    timeout=POOL_TIMEOUT,
                    open=False,
                    name="postflow",
                )
                await pool.open(wait=False)
                self._pool = pool
        return self._pool

    async def close(self) -> None:
        """Commit what is queued and close the pool."""
        if self._flusher is not None:
            await asyncio.shield(self._flusher)
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    async def write(self, fn: Callable[[Conn], Awaitable[T]]) -> T:
        """Run ``fn(conn)`` in one transaction; its result once committed."""
        pool = await self._connections()
        try:
            async with pool.connection() as conn, conn.transaction():
                return await fn(conn)
        except (psycopg.Error, PoolTimeout) as exc:
            raise storage_error(self.label, exc) from exc

    async def read(self, fn: Callable[[Conn], Awaitable[T]]) -> T:
        """Run ``fn(conn)`` on a pooled connection (each statement sees what is committed)."""
        pool = await self._connections()
        try:
            async with pool.connection() as conn:
                return await fn(conn)
        except (psycopg.Error, PoolTimeout) as exc:
            raise storage_error(self.label, exc) from exc

    async def accept(self, item: IncomingDelivery | str) -> None:
        """Commit an accepted delivery (or count a refusal); return once it is committed."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queued.append((item, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name="postgres-group-commit")
        await future

    async def _flush(self) -> None:
        """Commit what is queued, batch after batch, until the queue is empty."""
        while self._queued:
            batch, self._queued = self._queued, []
            items = [item for item, _ in batch]

            async def commit(conn: Conn, items: list[IncomingDelivery | str] = items) -> bool:
                return await _commit_ingress(conn, items)

            try:
                delivered = await self.write(commit)
            except Exception as exc:  # StorageError, or a bug: every waiter learns it
                error = exc if isinstance(exc, StorageError) else storage_error(self.label, exc)
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error)
                continue
            for _, future in batch:
                if not future.done():
                    future.set_result(None)
            if delivered and self.on_deliveries is not None:
                self.on_deliveries()

    async def changed(self) -> bool:
        """True when the queue or the outbox changed since the last call (the polling fallback)."""

        async def query(conn: Conn) -> tuple[int, ...]:
            row = await (await conn.execute(_FINGERPRINT)).fetchone()
            return tuple(int(v) for v in row) if row else ()

        seen, self._fingerprint = self._fingerprint, await self.read(query)
        return seen is not None and seen != self._fingerprint
