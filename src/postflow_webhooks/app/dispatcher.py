"""``NotificationDispatcher``: delivers the outbox's due notifications to Discord, in order.

One pass reads ``outbox.due(limit)`` and handles each notification strictly in
id (commit) order, so a notification never overtakes an earlier one for the
same file. Before each send it waits for the rate-limit bucket; a 429 waits
``retry_after``; transient failures retry through an injected tenacity policy
and, once that gives up, the pass stops and the next one starts after an
outage backoff (nothing is lost, nothing is skipped). A broken destination
(404/401/403) is saved and stops sending at once; its backlog waits until the
URL changes or ``reset_destination()`` is called. A 400 dead-letters only that
notification. Time and sleeping are injected so tests run on simulated time.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import httpx
from tenacity import AsyncRetrying

from postflow_webhooks.adapters.discord import (
    DiscordConfig,
    DiscordNotifier,
    filtered_out,
    skip_reason,
)
from postflow_webhooks.adapters.discord.ratelimit import MonotonicClock
from postflow_webhooks.app.dispatch_results import (
    DispatcherState,
    PassOutcome,
    PassResult,
    Sleep,
    default_retrying,
)
from postflow_webhooks.domain.errors import (
    DestinationBrokenError,
    NotifierError,
    RateLimitedError,
    RejectedError,
    TransientError,
)
from postflow_webhooks.domain.journal import DestinationState
from postflow_webhooks.domain.ports import Clock, NotificationOutbox, Notifier
from postflow_webhooks.domain.records import Notification

log = logging.getLogger(__name__)

NO_DESTINATION = "discord:none"
MIN_RATE_LIMIT_WAIT = 0.25
STATE_COUNT_LIMIT = 1000


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
        notifier: Notifier | None,
        *,
        config: DiscordConfig,
        clock: Clock,
        sleep: Sleep = asyncio.sleep,
        retrying: AsyncRetrying | None = None,
        destination_key: str = NO_DESTINATION,
        label: str | None = None,
        pace: Callable[[], float] | None = None,
        batch_size: int = 50,
        poll_interval: float = 1.0,
        outage_initial: float = 30.0,
        outage_max: float = 300.0,
        stop_timeout: float = 5.0,
    ) -> None:
        self._outbox = outbox
        self._notifier = notifier
        self._config = config
        self._clock = clock
        self._sleep = sleep
        self._retrying = retrying if retrying is not None else default_retrying(sleep=sleep)
        self._key = destination_key
        self._label = label
        self._pace = pace or (lambda: 0.0)
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._outage_initial = outage_initial
        self._outage_max = outage_max
        self._stop_timeout = stop_timeout
        self._outages = 0
        self._destination = DestinationState(key=destination_key)
        self._last_sent_at: datetime | None = None
        self._last_error: str | None = None
        self._counts = {"sent": 0, "skipped": 0, "dead": 0, "rate_limited": 0}
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()

    @classmethod
    def from_config(
        cls,
        config: DiscordConfig,
        outbox: NotificationOutbox,
        *,
        clock: Clock,
        sleep: Sleep = asyncio.sleep,
        retrying: AsyncRetrying | None = None,
        client: httpx.AsyncClient | None = None,
        monotonic: MonotonicClock | None = None,
        **options: Any,
    ) -> NotificationDispatcher:
        """A dispatcher for ``config``: a ``DiscordNotifier`` when a URL is set, else skip-only."""
        if not config.enabled:
            return cls(outbox, None, config=config, clock=clock, sleep=sleep, **options)
        extra = {} if monotonic is None else {"monotonic": monotonic}
        notifier = DiscordNotifier(config, client=client, **extra)
        return cls(
            outbox,
            notifier,
            config=config,
            clock=clock,
            sleep=sleep,
            retrying=retrying,
            destination_key=notifier.key,
            label=notifier.label,
            pace=notifier.next_send_delay,
            **options,
        )

    @property
    def notifier(self) -> Notifier | None:
        """The notifier in use; ``None`` when no URL is configured."""
        return self._notifier

    def wake(self) -> None:
        """Look for due notifications now; safe from any thread (e.g. a journal ``on_commit``)."""
        loop = self._loop
        try:
            current: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            current = None
        if loop is None or current is loop:
            self._wake.set()
            return
        with contextlib.suppress(RuntimeError):  # the loop is closed: nothing to wake
            loop.call_soon_threadsafe(self._wake.set)

    def wants(self, notification: Notification) -> bool:
        """True if this would be sent (a destination, and the settings announce it).

        The worker queues only those: a notification that would only be
        settled as skipped is counted as skipped and never written.
        """
        return self._notifier is not None and filtered_out(self._config, notification) is None

    def skipped(self, count: int) -> None:
        """Count notifications the worker did not queue (see ``wants``)."""
        self._counts["skipped"] += count

    async def start(self) -> None:
        """Start the long-running delivery loop as a background task."""
        if self._task is None or self._task.done():
            self._loop = asyncio.get_running_loop()
            self._stopping.clear()
            if self._notifier is not None:
                self._destination = await self._outbox.destination(self._key)
            self._task = asyncio.create_task(self._run(), name="notification-dispatcher")

    async def stop(self) -> None:
        """Stop after the send in flight (cancel after ``stop_timeout``), close the client."""
        task, self._task = self._task, None
        self._stopping.set()
        self._wake.set()
        if task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(task), self._stop_timeout)
        except TimeoutError:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if isinstance(self._notifier, DiscordNotifier):
            await self._notifier.aclose()

    async def reset_destination(self) -> None:
        """Clear a broken mark (the webhook was fixed) and resume sending."""
        self._destination = DestinationState(key=self._key)
        await self._outbox.set_destination(self._destination)
        self._outages = 0
        self.wake()

    async def drain(self, max_passes: int = 10_000) -> int:
        """Run passes until nothing is due or the destination is broken; how many settled."""
        settled = 0
        for _ in range(max_passes):
            result = await self.run_once()
            settled += result.settled
            if result.outcome is PassOutcome.OUTAGE:
                await self._sleep(result.wait)
            elif result.outcome is not PassOutcome.MORE:
                break
        return settled

    async def run_once(self) -> PassResult:
        """One pass over the due notifications, in commit order."""
        if self._notifier is not None:
            self._destination = await self._outbox.destination(self._key)
            if self._destination.broken:
                return PassResult(PassOutcome.BROKEN)
        batch = await self._outbox.due(self._batch_size)
        if not batch:
            return PassResult(PassOutcome.IDLE)
        settled = 0
        # Skips are settled together, one write, before the next send and at the end.
        skipped: list[tuple[int, str]] = []
        for notification in batch:
            if self._stopping.is_set():
                await self._settle_skipped(skipped)
                return PassResult(PassOutcome.STOPPED, settled)
            if self._notifier is None:
                reason: str | None = skip_reason(self._config, notification) or "no notifier"
            else:
                reason = filtered_out(self._config, notification)
            if reason is not None or self._notifier is None:
                skipped.append((_id(notification), reason or "no notifier"))
                settled += 1
                continue
            await self._settle_skipped(skipped)
            result = await self._deliver(self._notifier, notification)
            if result is _Sent.SETTLED:
                settled += 1
            elif result is _Sent.BROKEN:
                return PassResult(PassOutcome.BROKEN, settled)
            elif result is _Sent.STOPPED:
                return PassResult(PassOutcome.STOPPED, settled)
            else:
                self._outages += 1
                wait = min(self._outage_initial * 2 ** (self._outages - 1), self._outage_max)
                return PassResult(PassOutcome.OUTAGE, settled, wait)
        await self._settle_skipped(skipped)
        return PassResult(PassOutcome.MORE, settled)

    async def _settle_skipped(self, skipped: list[tuple[int, str]]) -> None:
        """Mark the gathered skips settled in one write, and forget them."""
        if skipped:
            await self._outbox.mark_skipped(list(skipped), self._clock.now())
            self._counts["skipped"] += len(skipped)
            skipped.clear()

    async def _deliver(self, notifier: Notifier, notification: Notification) -> _Sent:
        ident = _id(notification)
        while True:
            delay = self._pace()
            if delay > 0 and not await self._pause(delay):
                return _Sent.STOPPED
            try:
                await self._send_with_retries(notifier, notification)
            except RateLimitedError as exc:
                self._counts["rate_limited"] += 1
                self._last_error = exc.reason
                log.warning("notification %s: %s", ident, exc.reason)
                wait = max(exc.retry_after, self._pace(), MIN_RATE_LIMIT_WAIT)
                if not await self._pause(wait):
                    return _Sent.STOPPED
                continue
            except TransientError as exc:
                self._last_error = exc.reason
                log.warning("notification %s kept for later: %s", ident, exc.reason)
                return _Sent.OUTAGE
            except DestinationBrokenError as exc:
                await self._mark_broken(exc.reason)
                return _Sent.BROKEN
            except RejectedError as exc:
                await self._outbox.mark_dead(ident, exc.reason, self._clock.now())
                self._counts["dead"] += 1
                self._last_error = exc.reason
                log.warning("notification %s dead-lettered: %s", ident, exc.reason)
                return _Sent.SETTLED
            except NotifierError as exc:
                self._last_error = exc.reason
                log.warning("notification %s kept for later: %s", ident, exc.reason)
                return _Sent.OUTAGE
            except Exception as exc:
                reason = f"unexpected {type(exc).__name__} while sending"
                await self._outbox.mark_dead(ident, reason, self._clock.now())
                self._counts["dead"] += 1
                self._last_error = reason
                log.error("notification %s dead-lettered: %s", ident, reason)
                return _Sent.SETTLED
            now = self._clock.now()
            await self._outbox.mark_sent(ident, now)
            self._last_sent_at = now
            self._counts["sent"] += 1
            self._outages = 0
            return _Sent.SETTLED

    async def _send_with_retries(self, notifier: Notifier, notification: Notification) -> None:
        async for attempt in self._retrying.copy():
            with attempt:
                try:
                    await notifier.send(notification)
                except TransientError as exc:
                    log.info("notification %s: %s", notification.id, exc.reason)
                    raise

    async def _mark_broken(self, reason: str) -> None:
        self._destination = DestinationState(
            key=self._key, broken=True, reason=reason, since=self._clock.now()
        )
        await self._outbox.set_destination(self._destination)
        self._last_error = reason
        log.error("Discord destination marked broken, sending stopped: %s", reason)

    async def _pause(self, seconds: float) -> bool:
        """Sleep ``seconds`` unless stopped first; True when the full sleep happened."""
        if self._stopping.is_set():
            return False
        sleeper = asyncio.ensure_future(self._sleep(seconds))
        stopper = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait({sleeper, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sleeper, stopper):
                task.cancel()
        if sleeper.done() and not sleeper.cancelled():
            sleeper.result()  # a failing sleep must not turn waits into a tight loop
        return not self._stopping.is_set()

    async def _idle(self, seconds: float) -> None:
        if self._wake.is_set():
            self._wake.clear()
            return
        sleeper = asyncio.ensure_future(self._sleep(seconds))
        waker = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sleeper, waker):
                task.cancel()
        if sleeper.done() and not sleeper.cancelled():
            sleeper.result()
        self._wake.clear()

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                result = await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._last_error = f"outbox error: {type(exc).__name__}"
                log.exception("notification pass failed; retrying shortly")
                await self._pause(self._poll_interval * 5)
                continue
            if result.outcome is PassOutcome.MORE:
                await asyncio.sleep(0)
            elif result.outcome is PassOutcome.OUTAGE:
                await self._pause(result.wait)
            elif result.outcome is not PassOutcome.STOPPED:
                await self._idle(self._poll_interval)

    def state(self) -> dict[str, Any]:
        """JSON-ready figures for ``/health`` and ``/webhook-status`` (no I/O; as of the last pass)."""
        disabled = self._notifier is None
        broken = not disabled and self._destination.broken
        return {
            "destination": "disabled" if disabled else ("broken" if broken else "ok"),
            "destination_broken": broken,
            "destination_label": self._label,
            "destination_reason": self._destination.reason if broken else None,
            "broken_since": _iso(self._destination.since) if broken else None,
            "last_sent_at": _iso(self._last_sent_at),
            "last_error": self._last_error,
            "running": self._task is not None and not self._task.done(),
            "sent": self._counts["sent"],
            "skipped": self._counts["skipped"],
            "dead_lettered": self._counts["dead"],
            "rate_limited": self._counts["rate_limited"],
        }

    async def snapshot(self) -> DispatcherState:
        """The state with pending and dead counts read from the outbox (up to 1000 each)."""
        pending = await self._outbox.due(STATE_COUNT_LIMIT)
        dead = await self._outbox.dead_letters(STATE_COUNT_LIMIT)
        if self._notifier is None:
            destination = "disabled"
        else:
            self._destination = await self._outbox.destination(self._key)
            destination = "broken" if self._destination.broken else "ok"
        return DispatcherState(
            destination=destination,
            label=self._label,
            reason=self._destination.reason,
            broken_since=self._destination.since,
            pending=len(pending),
            pending_capped=len(pending) >= STATE_COUNT_LIMIT,
            dead=len(dead),
            last_sent_at=self._last_sent_at,
            last_error=self._last_error,
            running=self._task is not None and not self._task.done(),
            sent=self._counts["sent"],
            skipped=self._counts["skipped"],
            dead_lettered=self._counts["dead"],
            rate_limited=self._counts["rate_limited"],
        )


async def replay_dead_letters(
    outbox: NotificationOutbox, ids: Sequence[int] | None = None, *, batch: int = 500
) -> int:
    """Put dead letters (all, or those ``ids``) back in the queue; how many moved."""
    if ids is not None:
        return await outbox.requeue_dead(list(ids))
    moved = 0
    while True:
        letters = await outbox.dead_letters(batch)
        found = [d.notification.id for d in letters if d.notification.id is not None]
        if not found:
            return moved
        count = await outbox.requeue_dead(found)
        moved += count
        if count == 0:
            return moved


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _id(notification: Notification) -> int:
    if notification.id is None:
        raise ValueError("a due notification has no id")
    return notification.id
