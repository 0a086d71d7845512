"""``PostgresSharedState``: small values every receiver reads, one row each in ``shared_state``.

The registrar role's holder writes its status there, and ``register`` (or the
registrar, when it creates a webhook) writes the signing secret, so every
receiver on the database shows the same registrar status and accepts the same
signatures. The receivers read these rows asynchronously in a periodic task,
never on a request's path. Values are plain text (JSON where structured);
a secret's value is never logged or shown by this module.
"""

from __future__ import annotations

from typing import Any

import psycopg

from postflow_webhooks.adapters.postgres.database import Conn, PostgresDatabase

_PUT = (
    "INSERT INTO shared_state (key, value, updated_at) VALUES (%s, %s, now()) "
    "ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at"
)


class PostgresSharedState:
    """Read and write the shared rows of one ``PostgresDatabase``, through its pool."""

    def __init__(self, db: PostgresDatabase) -> None:
        self._db = db

    def __repr__(self) -> str:
        return f"PostgresSharedState({self._db.label})"

    async def get(self, key: str) -> str | None:
        """The value kept under ``key``, or ``None``."""

        async def query(conn: Conn) -> str | None:
            row = await (
                await conn.execute("SELECT value FROM shared_state WHERE key = %s", (key,))
            ).fetchone()
            return str(row[0]) if row else None

        return await self._db.read(query)

    async def read_all(self) -> dict[str, str]:
        """Every value kept, by key (a handful of rows)."""

        async def query(conn: Conn) -> dict[str, str]:
            rows = await (await conn.execute("SELECT key, value FROM shared_state")).fetchall()
            return {str(key): str(value) for key, value in rows}

        return await self._db.read(query)

    async def put(self, key: str, value: str) -> None:
        """Keep ``value`` under ``key`` (committed when this returns)."""

        async def upsert(conn: Conn) -> None:
            await conn.execute(_PUT, (key, value))

        await self._db.write(upsert)


def put_value(conn: psycopg.Connection[Any], key: str, value: str) -> None:
    """Keep ``value`` under ``key`` on a plain connection (for the CLI: ``register``, ``migrate``)."""
    conn.execute(_PUT, (key, value))


def delete_value(conn: psycopg.Connection[Any], key: str) -> None:
    """Forget the value kept under ``key`` (for ``unregister``)."""
    conn.execute("DELETE FROM shared_state WHERE key = %s", (key,))
