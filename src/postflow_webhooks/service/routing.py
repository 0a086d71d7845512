"""Several notification destinations over one outbox: one dispatcher each.

Each notification carries the name of its destination (``"default"`` or a
project's route, decided when it was committed). ``Dispatchers`` runs one
``NotificationDispatcher`` per destination; each reads only its own
notifications, in commit order, paced by its own notifier's rate limits and
stopped by its own broken state, so a broken or rate-limited channel never
holds the others back. The default dispatcher also takes notifications whose
route is no longer configured, so a route removed from the settings loses
nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from postflow_webhooks.service.dispatcher import NotificationDispatcher

_COUNTERS = ("sent", "dead_lettered", "rate_limited")


class Dispatchers:
    """The dispatchers of every configured destination, started, woken and stopped together."""

    def __init__(self, dispatchers: Sequence[NotificationDispatcher]) -> None:
        if not dispatchers:
            raise ValueError("at least one dispatcher is needed")
        self.all = tuple(dispatchers)

    @property
    def default(self) -> NotificationDispatcher:
        """The default destination's dispatcher (the first one when there is none)."""
        for dispatcher in self.all:
            if dispatcher.route is None:
                return dispatcher
        return self.all[0]

    def wake(self) -> None:
        """Look for due notifications now, everywhere."""
        for dispatcher in self.all:
            dispatcher.wake()

    async def start(self) -> None:
        """Start every destination's loop."""
        for dispatcher in self.all:
            await dispatcher.start()

    async def stop(self) -> None:
        """Stop every loop after its send in flight."""
        for dispatcher in self.all:
            await dispatcher.stop()

    async def reset_destination(self, route: str | None = None) -> None:
        """Clear the broken mark of one destination (``None``: the default) and resume it."""
        for dispatcher in self.all:
            if dispatcher.route == route:
                await dispatcher.reset_destination()

    async def drain(self) -> int:
        """Send what is due everywhere (until nothing is due or a destination is broken)."""
        settled = 0
        for dispatcher in self.all:
            settled += await dispatcher.drain()
        return settled

    def state(self) -> dict[str, Any]:
        """The default destination's state at the top, totals, and each destination's own.

        Counters are totals, ``last_sent_at`` the latest send anywhere,
        ``destination_broken`` is true when any destination is broken, and
        ``last_error`` is the default's, else another destination's.
        """
        states = [dispatcher.state() for dispatcher in self.all]
        top = dict(self.default.state())
        for counter in _COUNTERS:
            top[counter] = sum(state[counter] for state in states)
        top["destination_broken"] = any(state["destination_broken"] for state in states)
        top["running"] = all(state["running"] for state in states)
        sent = [state["last_sent_at"] for state in states if state["last_sent_at"]]
        top["last_sent_at"] = max(sent) if sent else None
        errors = [state["last_error"] for state in states if state["last_error"]]
        top["last_error"] = top["last_error"] or (errors[0] if errors else None)
        if len(states) > 1:
            top["destinations"] = states
        return top
