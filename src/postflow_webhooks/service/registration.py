"""Keeping our Frame.io webhook pointed at the tunnel's latest public URL.

A quick tunnel gets a new hostname with every cloudflared process, so each new
public URL is handed to ``on_new_public_url``; the update runs in the
background, the latest URL wins, and failures are retried with the injected
backoff until the webhook points at the URL deliveries can reach.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

import attrs

from postflow_webhooks.domain.endpoint import webhook_url
from postflow_webhooks.domain.ports import Backoff, Clock, Sleep, WebhookRegistry

log = logging.getLogger("postflow_webhooks.frameio")

SecretListener = Callable[[str], Awaitable[None]]


@attrs.frozen
class RegistrarStatus:
    """What ``/webhook-status`` shows about the Frame.io side (no secret in it)."""

    webhook_id: str | None = None
    registered_url: str | None = None
    wanted_url: str | None = None
    pending: bool = False
    updates: int = 0
    last_synced_at: datetime | None = None
    last_error: str | None = None


class WebhookRegistrar:
    """Subscribe ``on_new_public_url`` to the tunnel; our webhook follows."""

    def __init__(
        self,
        registry: WebhookRegistry,
        clock: Clock,
        *,
        backoff: Backoff,
        sleep: Sleep = asyncio.sleep,
        create_if_missing: bool = True,
        on_secret: SecretListener | None = None,
    ) -> None:
        self._registry = registry
        self._clock = clock
        self._backoff = backoff
        self._sleep = sleep
        self._create = create_if_missing
        self._on_secret = on_secret
        self._wanted: str | None = None
        self._synced: str | None = None
        self._task: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self._status = RegistrarStatus()

    async def on_new_public_url(self, public_url: str) -> None:
        """Record the tunnel's new base URL; the update happens in the background."""
        self._wanted = webhook_url(public_url)
        self._status = attrs.evolve(self._status, wanted_url=self._wanted, pending=True)
        self._idle.clear()
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._sync(), name="frameio-webhook-url")

    def registered(self, webhook_id: str, url: str) -> None:
        """Our webhook was just pointed at ``url`` by other means (created by the host)."""
        self._wanted = self._synced = url
        self._status = attrs.evolve(
            self._status,
            webhook_id=webhook_id,
            registered_url=url,
            wanted_url=url,
            pending=False,
            updates=self._status.updates + 1,
            last_synced_at=self._clock.now(),
            last_error=None,
        )

    def resume(self, previous: RegistrarStatus) -> None:
        """Carry on from the status a previous holder of the role left (shared store).

        Its webhook, URL and count of updates are shown until this process's
        own first update; the URL is still checked again, as after any start.
        """
        if self._status == RegistrarStatus():
            self._status = attrs.evolve(previous, pending=False, last_error=None)

    def status(self) -> RegistrarStatus:
        """The state of our webhook as far as this process knows."""
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
                    done = await self._point_at(wanted)
                except Exception as exc:  # Frame.io refused or is unreachable: retry later
                    failures += 1
                    delay = self._backoff(failures)
                    log.warning(
                        "Frame.io webhook URL update failed (%s); retrying in %.0f s", exc, delay
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

    async def _point_at(self, url: str) -> bool:
        found = await self._registry.point_at(url, create=self._create)
        if found is None:
            message = (
                f"no Frame.io webhook named {self._registry.name!r} to update: "
                "run `postflow-webhooks register`"
            )
            log.warning(message)
            self._status = attrs.evolve(self._status, last_error=message)
            return False
        if found.secret and self._on_secret is not None:
            await self._on_secret(found.secret)
        self._status = attrs.evolve(
            self._status,
            webhook_id=found.webhook_id,
            registered_url=found.url or url,
            updates=self._status.updates + 1,
            last_synced_at=self._clock.now(),
            last_error=None,
        )
        return True
