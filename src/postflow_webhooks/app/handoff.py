"""What the receiver hands the worker: a ring after each commit, and parsed events.

The doorbell works in one process or across two (the worker process rings
its own from the pipe, ``worker_host.py``); the parsed events only when both
run in one process.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict

from postflow_webhooks.domain.events import WebhookEvent


class RecentEvents:
    """Events the receiver already parsed, handed to the worker so it need not parse again.

    Bounded: the oldest are forgotten, and the worker parses what it cannot
    find here (after a restart, for instance) from the stored bytes.
    """

    def __init__(self, limit: int = 20000) -> None:
        self._events: OrderedDict[str, WebhookEvent] = OrderedDict()
        self._limit = limit

    def put(self, delivery_id: str, event: WebhookEvent) -> None:
        """Remember a freshly accepted delivery's event."""
        self._events[delivery_id] = event
        if len(self._events) > self._limit:
            self._events.popitem(last=False)

    def take(self, delivery_id: str) -> WebhookEvent | None:
        """The event of a delivery, forgotten once taken."""
        return self._events.pop(delivery_id, None)


class Doorbell:
    """Wakes the worker when deliveries are committed; safe to ring from any thread."""

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    def bind(self) -> None:
        """Attach to the running loop (call from it)."""
        self._loop = asyncio.get_running_loop()

    def ring(self) -> None:
        """Wake the worker."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            loop.call_soon_threadsafe(self._event.set)
        except RuntimeError:
            pass

    async def wait(self, timeout: float) -> None:
        """Wait for a ring or ``timeout`` seconds."""
        try:
            await asyncio.wait_for(self._event.wait(), timeout)
        except TimeoutError:
            pass
        self._event.clear()
