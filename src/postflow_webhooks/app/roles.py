"""``SoleRoles``: the one receiver of a data directory runs every role itself.

With SQLite the data directory lock already makes a receiver the only one, so
every role is gained at start, in order, and lost at stop, in the same order.
With PostgreSQL, ``adapters.postgres.PostgresRoles`` shares them out instead.
"""

from __future__ import annotations

from collections.abc import Sequence

from postflow_webhooks.domain.ports import Role


class SoleRoles:
    """``RoleLeases`` for a receiver that is alone: it holds every role."""

    def __init__(self) -> None:
        self._roles: list[Role] = []
        self._held: set[str] = set()

    async def start(self, roles: Sequence[Role]) -> None:
        """Gain every role now, in order."""
        self._roles = list(roles)
        for role in self._roles:
            self._held.add(role.name)
            await role.gain()

    async def stop(self) -> None:
        """Lose every role, in the order they were given."""
        for role in self._roles:
            if role.name in self._held:
                self._held.discard(role.name)
                await role.lose()

    def holds(self, name: str) -> bool:
        """True while the role is held (from start to stop)."""
        return name in self._held

    def state(self) -> dict[str, str]:
        """Each role and ``held`` or ``standby``."""
        return {r.name: "held" if r.name in self._held else "standby" for r in self._roles}
