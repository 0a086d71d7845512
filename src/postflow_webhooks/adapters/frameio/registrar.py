"""Keeps our Frame.io webhook pointed at the tunnel's latest public URL, coalescing changes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

import attrs

from postflow_webhooks.adapters.frameio.client import Sleep
from postflow_webhooks.adapters.frameio.errors import FrameioError
from postflow_webhooks.adapters.frameio.tokens import SystemClock
from postflow_webhooks.adapters.frameio.webhooks import FrameioWebhooks, webhook_url
from postflow_webhooks.domain.ports import Clock

log = logging.getLogger("postflow_webhooks.frameio")

SecretListener = Callable[[str], Awaitable[None]]


@attrs.frozen
class RegistrarStatus:
    """What ``/webhook-status`` can show about the Frame.io side (no secret in it)."""

    webhook_id: str | None = None
    registered_url: str | None = None
    wanted_url: str | None = None
    pending: bool = False
    updates: int = 0
    last_synced_at: datetime | None = None
    last_error: str | None = None


class WebhookRegistrar:
    """Subscribe ``on_new_public_url`` to the tunnel; our webhook follows, within the rate limit."""

    def __init__(
        self,
        webhooks: FrameioWebhooks,
        *,
        on_secret: SecretListener | None = None,
        create_if_missing: bool = True,
        clock: Clock | None = None,
        sleep: Sleep = asyncio.sleep,
        max_backoff: float = 300.0,
    ) -> None:
        self._webhooks = webhooks
        self._on_secret = on_secret
        self._create = create_if_missing
        self._clock: Clock = clock or SystemClock()
        self._sleep = sleep
        self._max_backoff = max_backoff
        self._wanted: str | None = None
        self._synced: str | None = None
        self._task: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self._status = RegistrarStatus()

    async def on_new_public_url(self, public_url: str) -> None:
        """Record the tunnel's new base URL; the update happens in the background, latest wins."""
        self._wanted = webhook_url(public_url)
        self._status = attrs.evolve(self._status, wanted_url=self._wanted, pending=True)
        self._idle.clear()
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._sync(), name="frameio-webhook-url")

    def status(self) -> RegistrarStatus:
        """The current state of our webhook as far as this process knows."""
        return self._status

    async def wait_idle(self) -> None:
        """Return once no update is pending (synced, or given up until the next URL)."""
        await self._idle.wait()

    async def aclose(self) -> None:
        """Stop any update in progress."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._idle.set()

    async def _sync(self) -> None:
        failures = 0
        try:
            while self._wanted is not None and self._wanted != self._synced:
                wanted = self._wanted
                try:
                    done = await self._apply(wanted)
                except FrameioError as exc:
                    failures += 1
                    delay = min(self._max_backoff, 6.0 * 2 ** (failures - 1))
                    log.warning(
                        "Frame.io webhook URL update failed (%s); retrying in %.0fs", exc, delay
                    )
                    self._status = attrs.evolve(self._status, last_error=str(exc))
                    await self._sleep(delay)
                    continue
                if not done:
                    break
                failures = 0
                self._synced = wanted
        finally:
            pending = self._wanted != self._synced
            self._status = attrs.evolve(self._status, pending=pending)
            self._idle.set()

    async def _apply(self, url: str) -> bool:
        info = None
        if self._synced is not None or not self._create:
            info = await self._webhooks.update_url(url)
        if info is None and not self._create:
            message = f"no Frame.io webhook named {self._webhooks.name!r}: run `postflow-webhooks register`"
            log.warning(message)
            self._status = attrs.evolve(self._status, last_error=message)
            return False
        if info is None:
            registration = await self._webhooks.register(url)
            info = registration.webhook
            if registration.created and registration.secret and self._on_secret is not None:
                await self._on_secret(registration.secret)
        self._status = attrs.evolve(
            self._status,
            webhook_id=info.id,
            registered_url=info.url or url,
            updates=self._status.updates + 1,
            last_synced_at=self._clock.now(),
            last_error=None,
        )
        return True
