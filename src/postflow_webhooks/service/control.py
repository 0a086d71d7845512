"""Waking, pausing and stopping a background loop: one small object each loop owns."""

from __future__ import annotations

import asyncio
import contextlib

from postflow_webhooks.domain.ports import Sleep


class LoopControl:
    """A loop's doorbell and stop switch; its pauses use the injected ``sleep``."""

    def __init__(self, sleep: Sleep = asyncio.sleep) -> None:
        self._sleep = sleep
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()

    @property
    def stopping(self) -> bool:
        """True once ``stop`` was called."""
        return self._stop.is_set()

    def wake(self) -> None:
        """Ring: there may be work."""
        self._wake.set()

    def stop(self) -> None:
        """Ask the loop to finish; ends any pause or idle wait at once."""
        self._stop.set()
        self._wake.set()

    def restart(self) -> None:
        """Clear a previous stop (the loop is started again)."""
        self._stop.clear()

    async def pause(self, seconds: float) -> bool:
        """Sleep ``seconds`` unless stopped first; True when the whole sleep happened."""
        if self.stopping:
            return False
        sleeper = asyncio.ensure_future(self._sleep(seconds))
        stopper = asyncio.ensure_future(self._stop.wait())
        try:
            await asyncio.wait({sleeper, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sleeper, stopper):
                task.cancel()
        if sleeper.done() and not sleeper.cancelled():
            sleeper.result()  # a failing sleep must not become a tight loop
        return not self.stopping

    async def idle(self, timeout: float | None = None) -> None:
        """Wait for a ring, a stop, or ``timeout`` seconds (``None``: no limit)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout)
        self._wake.clear()
