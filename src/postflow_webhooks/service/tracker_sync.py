"""Keeping PostFlow's tracker in step: every committed record change, written to it.

The records live in the journal's database, committed with the deliveries
that changed them. PostFlow's tracker (its JSON file, or its live object when
the receiver is embedded) is brought up to date after each commit: the
changes since the tracker's mark are written, then the mark moves. A failed
write is retried with the injected backoff; writes are idempotent, so a crash
between a write and its mark only writes the same entries again.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from postflow_webhooks.domain.ports import Backoff, Sleep, Tracker, TrackerFeed
from postflow_webhooks.service.control import LoopControl

log = logging.getLogger("postflow_webhooks.tracker")


class TrackerSync:
    """Writes changed records to the tracker, in change order, until it has them all."""

    def __init__(
        self,
        feed: TrackerFeed,
        tracker: Tracker,
        *,
        backoff: Backoff,
        sleep: Sleep = asyncio.sleep,
        batch_size: int = 500,
    ) -> None:
        self._feed = feed
        self._tracker = tracker
        self._backoff = backoff
        self._control = LoopControl(sleep)
        self._batch_size = batch_size
        self._task: asyncio.Task[None] | None = None
        self.written = 0
        self.last_error: str | None = None

    def wake(self) -> None:
        """Records were committed: write them."""
        self._control.wake()

    async def adopt(self) -> int:
        """Take in the files the tracker knows and the database does not (run at start)."""
        adopted = await self._feed.adopt(await self._tracker.entries())
        if adopted:
            log.info("took %d tracked file(s) from PostFlow's tracker", adopted)
        return adopted

    async def catch_up(self) -> int:
        """Write every change not yet in the tracker; how many records were written."""
        written = 0
        while True:
            mark = await self._feed.tracker_mark()
            records, new_mark = await self._feed.changed_since(mark, self._batch_size)
            if not records:
                return written
            await self._tracker.write(records)
            await self._feed.set_tracker_mark(new_mark)
            written += len(records)
            self.written += len(records)

    async def start(self) -> None:
        """Catch up in the background, then after every wake."""
        self._control.restart()
        self._task = asyncio.create_task(self.run(), name="tracker-sync")

    async def stop(self) -> None:
        """Write what is pending (one last try), then stop."""
        self._control.stop()
        if self._task is not None:
            await self._task
            self._task = None

    async def run(self) -> None:
        """Catch up, then again after every wake, until stopped; failures wait the backoff."""
        failures = 0
        while True:
            try:
                await self.catch_up()
            except Exception as exc:  # the tracker or the database failed: keep, retry
                failures += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                wait = self._backoff(failures)
                if failures == 1 or failures % 10 == 0:
                    log.error(
                        "PostFlow's tracker could not be updated (%d in a row), "
                        "retrying in %.1f s: %s",
                        failures,
                        wait,
                        exc,
                    )
                if not await self._control.pause(wait):
                    return
                continue
            if failures:
                log.info("PostFlow's tracker is up to date again")
            failures = 0
            self.last_error = None
            if self._control.stopping:
                return
            await self._control.idle()

    def state(self) -> dict[str, Any]:
        """What ``/health`` shows of it."""
        return {"written": self.written, "last_error": self.last_error}
