"""``PostgresRoles``: each background role held by one receiver at a time, with advisory locks.

One dedicated connection per receiver holds a session-level advisory lock
per role it runs, and LISTENs for the wake-up channels. A receiver without a
role tries to take it every ``retry_every`` seconds. The locks belong to the
session: when a holder dies, PostgreSQL ends its session (at once when the
process dies; after the keepalives when its machine vanishes, see
``connection.DEAD_PEER_SECONDS``) and another receiver takes the role on its
next try. When this receiver's own connection fails it stops every role it
held at once, then reconnects with the injected backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import zlib
from collections.abc import Callable, Sequence
from typing import Any

import psycopg

from postflow_webhooks.domain.ports import Backoff, Role

log = logging.getLogger("postflow_webhooks.roles")

# The advisory lock namespace (first key) of every role; the second key is the role's.
LOCK_NAMESPACE = 0x70667700
RETRY_SECONDS = 2.0


def role_key(name: str) -> int:
    """The second advisory-lock key of a role: stable across releases and receivers."""
    return zlib.crc32(name.encode()) & 0x7FFFFFFF


class PostgresRoles:
    """``RoleLeases`` over one PostgreSQL database; also delivers NOTIFY wake-ups."""

    def __init__(
        self,
        conninfo: str,
        label: str,
        *,
        reconnect: Backoff,
        retry_every: float = RETRY_SECONDS,
    ) -> None:
        self._conninfo = conninfo
        self.label = label
        self._reconnect = reconnect
        self._retry_every = retry_every
        self._roles: list[Role] = []
        self._held: set[str] = set()
        self._wakes: dict[str, list[Callable[[], None]]] = {}
        self._task: asyncio.Task[None] | None = None
        self._first_round = asyncio.Event()
        self._stopping = False
        self.last_error: str | None = None

    def __repr__(self) -> str:
        return f"PostgresRoles({self.label})"

    def on_notify(self, channel: str, wake: Callable[[], None]) -> None:
        """Call ``wake`` whenever ``NOTIFY channel`` is committed by any receiver."""
        self._wakes.setdefault(channel, []).append(wake)

    def holds(self, name: str) -> bool:
        """True while this receiver holds the role."""
        return name in self._held

    def state(self) -> dict[str, str]:
        """Each role: ``held`` here or ``standby`` (another receiver may hold it)."""
        return {role.name: "held" if role.name in self._held else "standby" for role in self._roles}

    async def start(self, roles: Sequence[Role], first_round_timeout: float = 10.0) -> None:
        """Connect, take what is free, and keep trying in the background."""
        self._roles = list(roles)
        self._stopping = False
        self._first_round.clear()
        self._task = asyncio.create_task(self._run(), name="postgres-roles")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._first_round.wait(), first_round_timeout)

    async def stop(self) -> None:
        """Stop the held roles (in order), then close the session, which frees their locks.

        The locks are kept until each role has stopped, so no other receiver's
        worker starts while this one finishes its last pass.
        """
        self._stopping = True
        await self._lose_all("the receiver is stopping", level=logging.INFO)
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        failures = 0
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self._conninfo, autocommit=True
                ) as conn:
                    for channel in self._wakes:
                        await conn.execute(f"LISTEN {channel}")
                    if failures:
                        log.info("roles: connected to %s again", self.label)
                    failures = 0
                    self.last_error = None
                    await self._serve(conn)
            except psycopg.Error as exc:
                failures += 1
                self.last_error = f"{type(exc).__name__}: {str(exc).strip()[:200]}"
                await self._lose_all(f"the connection to {self.label} failed: {self.last_error}")
                self._first_round.set()
                wait = self._reconnect(failures)
                if failures == 1 or failures % 10 == 0:
                    log.warning("roles: %s; reconnecting in %.1f s", self.last_error, wait)
                await asyncio.sleep(wait)

    async def _serve(self, conn: psycopg.AsyncConnection[Any]) -> None:
        """Take free roles, then relay wake-ups for ``retry_every`` seconds; again and again."""
        while True:
            for role in self._roles:
                if role.name not in self._held:
                    await self._try_take(conn, role)
            self._first_round.set()
            async for note in conn.notifies(timeout=self._retry_every):
                for wake in self._wakes.get(note.channel, ()):
                    wake()
            if self._held:
                await conn.execute("SELECT 1")  # a dead session surfaces here, not later

    async def _try_take(self, conn: psycopg.AsyncConnection[Any], role: Role) -> None:
        if self._stopping:
            return
        key = role_key(role.name)
        cur = await conn.execute("SELECT pg_try_advisory_lock(%s, %s)", (LOCK_NAMESPACE, key))
        row = await cur.fetchone()
        if not row or not row[0]:
            return
        self._held.add(role.name)
        log.info("took the %s role (database %s)", role.name, self.label)
        try:
            await role.gain()
        except Exception:
            log.exception("the %s role could not start; letting it go", role.name)
            self._held.discard(role.name)
            await conn.execute("SELECT pg_advisory_unlock(%s, %s)", (LOCK_NAMESPACE, key))

    async def _lose_all(self, why: str, level: int = logging.WARNING) -> None:
        for role in self._roles:
            if role.name in self._held:
                self._held.discard(role.name)
                log.log(level, "gave up the %s role: %s", role.name, why)
                try:
                    await role.lose()
                except Exception:
                    log.exception("stopping the %s role failed", role.name)
