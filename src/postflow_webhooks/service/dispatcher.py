"""Announcing changes: the outbox's due notifications go to the notifier, in commit order.

One pass reads ``outbox.due(limit)`` and sends each notification strictly in
id (commit) order, so a notification never overtakes an earlier one for the
same file. Before each send it waits as long as the destination asks
(``Notifier.ready_in``); a rate-limit answer waits its ``retry_after`` and
sends the same notification again. A transient failure ends the pass; the next
one starts after the injected outage backoff (nothing is lost, nothing is
skipped). A broken destination (gone, or refusing our credentials) is saved
and stops sending at once until ``reset_destination()``. A refused
notification is dead-lettered alone.

What is worth announcing, and where, was decided when the change was
committed (``AnnouncePolicy``): everything due here is sent. A dispatcher
serves one destination: it reads only the notifications addressed to its
``route`` (or, for the default destination, every one not addressed to a
route of another dispatcher), so several destinations keep their own order,
pacing and broken state over the one outbox (``service/routing.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import attrs

from postflow_webhooks.domain.errors import (
    DestinationBrokenError,
    NotifierError,
    RateLimitedError,
    RejectedError,
    TransientError,
)
from postflow_webhooks.domain.journal import DestinationState
from postflow_webhooks.domain.ports import (
    Backoff,
    Clock,
    DeadLetters,
    DestinationStates,
    NotificationOutbox,
    Notifier,
    Sleep,
)
from postflow_webhooks.domain.records import Notification
from postflow_webhooks.service.control import LoopControl

log = logging.getLogger("postflow_webhooks.notifications")

MIN_RATE_LIMIT_WAIT = 0.25


class PassOutcome(enum.Enum):
    """How a dispatcher pass ended, which decides when the next one runs."""

    IDLE = "idle"
    MORE = "more"
    BROKEN = "broken"
    OUTAGE = "outage"
    STOPPED = "stopped"


@attrs.frozen
class PassResult:
    """One pass: how many it settled and how it ended; ``wait`` is the outage backoff."""

    outcome: PassOutcome
    settled: int = 0
    wait: float = 0.0


class _Sent(enum.Enum):
    SETTLED = "settled"
    BROKEN = "broken"
    OUTAGE = "outage"
    STOPPED = "stopped"


class NotificationDispatcher:
    """Sends due notifications one at a time, in commit order, paced by the destination."""

    def __init__(
        self,
        outbox: NotificationOutbox,
        destinations: DestinationStates,
        notifier: Notifier,
        clock: Clock,
        *,
        outage_backoff: Backoff,
        sleep: Sleep = asyncio.sleep,
        batch_size: int = 50,
        stop_timeout: float = 5.0,
        route: str | None = None,
        exclude: Sequence[str] = (),
    ) -> None:
        self.route = route
        self._exclude = tuple(exclude)
        self._outbox = outbox
        self._destinations = destinations
        self._notifier = notifier
        self._clock = clock
        self._backoff = outage_backoff
        self._control = LoopControl(sleep)
        self._batch_size = batch_size
        self._stop_timeout = stop_timeout
        self._outages = 0
        self._destination = DestinationState(key=notifier.key)
        self._last_sent_at: datetime | None = None
        self._last_error: str | None = None
        self._counts = {"sent": 0, "dead": 0, "rate_limited": 0, "failed": 0}
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        """Look for due notifications now."""
        self._control.wake()

    @property
    def running(self) -> bool:
        """True while the delivery loop runs in this process."""
        return self._task is not None and not self._task.done()

    async def refresh(self) -> None:
        """Read the destination's saved state (another process may be the one sending)."""
        self._destination = await self._destinations.destination(self._notifier.key)

    async def start(self) -> None:
        """Start the delivery loop in the background."""
        if self._task is None or self._task.done():
            self._control.restart()
            self._destination = await self._destinations.destination(self._notifier.key)
            name = f"notification-dispatcher:{self.route or 'default'}"
            self._task = asyncio.create_task(self._run(), name=name)

    async def stop(self) -> None:
        """Stop after the send in flight (cancelled after ``stop_timeout``)."""
        task, self._task = self._task, None
        self._control.stop()
        if task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(task), self._stop_timeout)
        except TimeoutError:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def reset_destination(self) -> None:
        """Clear a broken mark (the webhook was fixed) and resume sending."""
        self._destination = DestinationState(key=self._notifier.key)
        await self._destinations.set_destination(self._destination)
        self._outages = 0
        self.wake()

    async def drain(self, max_passes: int = 10_000) -> int:
        """Run passes until nothing is due or the destination is broken; how many settled."""
        settled = 0
        for _ in range(max_passes):
            result = await self.run_once()
            settled += result.settled
            if result.outcome is PassOutcome.OUTAGE:
                await self._control.pause(result.wait)
            elif result.outcome is not PassOutcome.MORE:
                break
        return settled

    async def run_once(self) -> PassResult:
        """One pass over the due notifications, in commit order."""
        self._destination = await self._destinations.destination(self._notifier.key)
        if self._destination.broken:
            return PassResult(PassOutcome.BROKEN)
        batch = await self._outbox.due(self._batch_size, self.route, exclude=self._exclude)
        if not batch:
            return PassResult(PassOutcome.IDLE)
        settled = 0
        for notification in batch:
            if self._control.stopping:
                return PassResult(PassOutcome.STOPPED, settled)
            result = await self._deliver(notification)
            if result is _Sent.SETTLED:
                settled += 1
            elif result is _Sent.BROKEN:
                return PassResult(PassOutcome.BROKEN, settled)
            elif result is _Sent.STOPPED:
                return PassResult(PassOutcome.STOPPED, settled)
            else:
                self._outages += 1
                return PassResult(PassOutcome.OUTAGE, settled, self._backoff(self._outages))
        return PassResult(PassOutcome.MORE, settled)

    async def _deliver(self, notification: Notification) -> _Sent:
        ident = _id(notification)
        notifier = self._notifier
        while True:
            delay = notifier.ready_in()
            if delay > 0 and not await self._control.pause(delay):
                return _Sent.STOPPED
            try:
                await notifier.send(notification)
            except RateLimitedError as exc:
                self._counts["rate_limited"] += 1
                self._last_error = exc.reason
                log.warning("notification %s: %s", ident, exc.reason)
                wait = max(exc.retry_after, notifier.ready_in(), MIN_RATE_LIMIT_WAIT)
                if not await self._control.pause(wait):
                    return _Sent.STOPPED
                continue
            except DestinationBrokenError as exc:
                await self._mark_broken(exc.reason)
                return _Sent.BROKEN
            except RejectedError as exc:
                await self._dead_letter(ident, exc.reason)
                return _Sent.SETTLED
            except (TransientError, NotifierError) as exc:
                self._counts["failed"] += 1
                self._last_error = exc.reason
                log.warning("notification %s kept for later: %s", ident, exc.reason)
                return _Sent.OUTAGE
            except Exception as exc:  # a bug in the notifier: set this one aside, go on
                reason = f"unexpected {type(exc).__name__} while sending"
                log.error("notification %s: %s", ident, reason, exc_info=True)
                await self._dead_letter(ident, reason)
                return _Sent.SETTLED
            now = self._clock.now()
            await self._outbox.mark_sent(ident, now)
            self._last_sent_at = now
            self._counts["sent"] += 1
            self._outages = 0
            return _Sent.SETTLED

    async def _dead_letter(self, ident: int, reason: str) -> None:
        await self._outbox.mark_dead(ident, reason, self._clock.now())
        self._counts["dead"] += 1
        self._last_error = reason
        log.warning("notification %s dead-lettered: %s", ident, reason)

    async def _mark_broken(self, reason: str) -> None:
        self._destination = DestinationState(
            key=self._notifier.key, broken=True, reason=reason, since=self._clock.now()
        )
        await self._destinations.set_destination(self._destination)
        self._last_error = reason
        log.error(
            "notification destination %s marked broken, sending stopped: %s",
            self.route or "default",
            reason,
        )

    async def _run(self) -> None:
        failures = 0
        while not self._control.stopping:
            try:
                result = await self.run_once()
            except Exception as exc:  # the outbox could not be read or written
                failures += 1
                self._last_error = f"outbox error: {type(exc).__name__}"
                log.error("notification pass failed: %s", exc)
                await self._control.pause(self._backoff(failures))
                continue
            failures = 0
            if result.outcome is PassOutcome.MORE:
                continue
            if result.outcome is PassOutcome.OUTAGE:
                await self._control.pause(result.wait)
            elif result.outcome is not PassOutcome.STOPPED:
                await self._control.idle()

    def state(self) -> dict[str, Any]:
        """JSON-ready figures for ``/health`` and ``/webhook-status`` (as of the last pass)."""
        broken = self._destination.broken
        return {
            "route": self.route or "default",
            "destination": "broken" if broken else "ok",
            "destination_broken": broken,
            "destination_label": self._notifier.label,
            "destination_reason": self._destination.reason if broken else None,
            "broken_since": _iso(self._destination.since) if broken else None,
            "last_sent_at": _iso(self._last_sent_at),
            "last_error": self._last_error,
            "running": self.running,
            "sent": self._counts["sent"],
            "dead_lettered": self._counts["dead"],
            "rate_limited": self._counts["rate_limited"],
            "failed": self._counts["failed"],
        }


async def replay_dead_letters(
    letters: DeadLetters, ids: Sequence[int] | None = None, *, batch: int = 500
) -> int:
    """Put dead letters (all, or those ``ids``) back in the queue; how many moved."""
    if ids is not None:
        return await letters.requeue_dead(list(ids))
    moved = 0
    while True:
        found = [
            d.notification.id
            for d in await letters.dead_letters(batch)
            if d.notification.id is not None
        ]
        if not found:
            return moved
        count = await letters.requeue_dead(found)
        moved += count
        if count == 0:
            return moved


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _id(notification: Notification) -> int:
    if notification.id is None:
        raise ValueError("a due notification has no id")
    return notification.id
