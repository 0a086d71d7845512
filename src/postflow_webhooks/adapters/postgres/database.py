"""``PostgresDatabase``: one PostgreSQL database shared by every receiver, through a pool.

Everything durable lives there: deliveries and their counters, the accepted
signatures, the tracked files, the notification outbox, the destinations'
state, the open incidents. ``open`` (sync, like SQLite's) creates or migrates
the tables; the connection pool opens on first use inside the event loop.
Accepted deliveries are group-committed: what the receiver queued during one
commit goes in the next, in one transaction, and each waiter is answered once
its rows are committed (``synchronous_commit=on``). If a batch fails because
of one item (not the database), its items are written again one transaction
each, so only that one fails. Whether the database takes commits is kept
(``CommitHealth``) for ``/health``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import psycopg
from psycopg_pool import AsyncConnectionPool

from postflow_webhooks.adapters.postgres.connection import conninfo, nul_safe, redact
from postflow_webhooks.adapters.postgres.failures import CommitTracker, first_line
from postflow_webhooks.adapters.postgres.ingress import Item, commit_ingress, forget_signatures
from postflow_webhooks.adapters.postgres.schema import migrate
from postflow_webhooks.domain.endpoint import MAX_SKEW_SECONDS
from postflow_webhooks.domain.errors import StorageError, StorageUnavailableError
from postflow_webhooks.domain.journal import CommitFailure, IncomingDelivery

T = TypeVar("T")
Conn = psycopg.AsyncConnection[Any]
Waiter = tuple[Item, asyncio.Future[str | None]]

OUTBOX_CHANNEL = "postflow_outbox"
POOL_SIZE = 4
POOL_TIMEOUT = 10.0
# How often (in receipt time) accepted signatures older than the window are forgotten.
PRUNE_SIGNATURES_EVERY = 30.0

# Changes nobody rang about (replay from another process, a lost NOTIFY): cheap, indexed.
_FINGERPRINT = """
SELECT (SELECT coalesce(max(seq), 0) FROM deliveries),
       (SELECT count(*) FROM deliveries WHERE state = 'pending'),
       (SELECT coalesce(max(id), 0) FROM notifications),
       (SELECT count(*) FROM notifications WHERE state = 'pending')
"""


async def _configure(conn: Conn) -> None:
    nul_safe(conn)


class PostgresDatabase:
    """The shared database: ``write`` runs in a transaction, ``read`` on a pooled connection."""

    def __init__(
        self, url: str, *, pool_size: int = POOL_SIZE, application_name: str = "postflow-webhooks"
    ) -> None:
        self._conninfo = conninfo(url, application_name)
        self.label = redact(url)
        self.on_deliveries: Callable[[], None] | None = None
        self._pool_size = pool_size
        self._pool: AsyncConnectionPool[Conn] | None = None
        self._pool_lock: asyncio.Lock | None = None
        self._queued: list[Waiter] = []
        self._flusher: asyncio.Task[None] | None = None
        self._fingerprint: tuple[int, ...] | None = None
        self._health = CommitTracker(self.label)
        self._pruned_at = 0.0

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
                f"cannot open the database {self.label}: {first_line(exc)}. "
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
                    configure=_configure,
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

    def commit_failure(self) -> CommitFailure | None:
        """Why the last commit failed (server gone, disk full, ...); ``None`` once one succeeds."""
        return self._health.failure

    async def recheck(self) -> None:
        """While commits fail, try a small one, so health recovers when the cause is gone."""
        if self._health.failure is None:
            return

        async def probe(conn: Conn) -> None:
            await conn.execute(
                "INSERT INTO meta (key, value) VALUES ('commit_probe', now()::text) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value"
            )

        try:
            await self.write(probe)
        except StorageError:
            pass

    async def write(self, fn: Callable[[Conn], Awaitable[T]]) -> T:
        """Run ``fn(conn)`` in one transaction; its result once committed.

        The database failing raises ``StorageUnavailableError`` (and is kept for
        ``/health``); a value it refuses, ``StorageError``; a bug in ``fn``, itself.
        """
        try:
            pool = await self._connections()
            async with pool.connection() as conn, conn.transaction():
                result = await fn(conn)
        except Exception as exc:
            error = self._health.translate(exc, writing=True)
            if error is exc:
                raise
            raise error from exc
        self._health.committed()
        return result

    async def read(self, fn: Callable[[Conn], Awaitable[T]]) -> T:
        """Run ``fn(conn)`` on a pooled connection (each statement sees what is committed)."""
        try:
            pool = await self._connections()
            async with pool.connection() as conn:
                return await fn(conn)
        except Exception as exc:
            error = self._health.translate(exc, writing=False)
            if error is exc:
                raise
            raise error from exc

    async def accept(self, item: Item) -> str | None:
        """Commit an accepted delivery (or count a refusal); return once it is committed.

        Returns the first delivery's id when ``item`` replays a signed delivery
        already accepted; ``None`` otherwise.
        """
        future: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        self._queued.append((item, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name="postgres-group-commit")
        return await future

    async def _flush(self) -> None:
        """Commit what is queued, batch after batch, until the queue is empty."""
        while self._queued:
            batch, self._queued = self._queued, []
            try:
                results = await self._commit([item for item, _ in batch])
            except Exception as exc:
                if len(batch) == 1 or isinstance(exc, StorageUnavailableError):
                    _settle(batch, [], exc)
                else:
                    await self._one_by_one(batch)
                continue
            _settle(batch, results, None)

    async def _one_by_one(self, batch: list[Waiter]) -> None:
        """Write each item of a failed batch in its own transaction: only a bad one fails."""
        for index, waiter in enumerate(batch):
            try:
                results = await self._commit([waiter[0]])
            except Exception as exc:
                if isinstance(exc, StorageUnavailableError):
                    _settle(batch[index:], [], exc)
                    return
                _settle([waiter], [], exc)
                continue
            _settle([waiter], results, None)

    async def _commit(self, items: list[Item]) -> list[str | None]:
        """One ingress transaction; forgets old signatures about every 30 s of receipt time."""
        received = [i.received_at.timestamp() for i in items if isinstance(i, IncomingDelivery)]
        prune = bool(received) and max(received) - self._pruned_at >= PRUNE_SIGNATURES_EVERY

        async def commit(conn: Conn) -> list[str | None]:
            results = await commit_ingress(conn, items)
            if prune:
                await forget_signatures(conn, int(max(received)) - MAX_SKEW_SECONDS - 1)
            return results

        results = await self.write(commit)
        if prune:
            self._pruned_at = max(received)
        if received and self.on_deliveries is not None:
            self.on_deliveries()
        return results

    async def changed(self) -> bool:
        """True when the queue or the outbox changed since the last call (the polling fallback)."""

        async def query(conn: Conn) -> tuple[int, ...]:
            row = await (await conn.execute(_FINGERPRINT)).fetchone()
            return tuple(int(v) for v in row) if row else ()

        seen, self._fingerprint = self._fingerprint, await self.read(query)
        return seen is not None and seen != self._fingerprint


def _settle(batch: list[Waiter], results: list[str | None], error: BaseException | None) -> None:
    """Wake every waiter of ``batch`` with its result, or with ``error``."""
    for index, (_, future) in enumerate(batch):
        if future.done():
            continue
        if error is None:
            future.set_result(results[index])
        else:
            future.set_exception(error)
