"""The running receiver: the wired parts, started and stopped in order."""

from __future__ import annotations

import logging
from typing import Any, Protocol

import attrs

from postflow_webhooks.adapters.sqlite import SqliteJournal
from postflow_webhooks.app.settings import Settings
from postflow_webhooks.app.worker import DeliveryWorker
from postflow_webhooks.domain.errors import TunnelError
from postflow_webhooks.domain.ports import Clock, Tunnel, UploadStore

log = logging.getLogger("postflow_webhooks")


class Service(Protocol):
    """A background part with a life of its own (the notification dispatcher)."""

    async def start(self) -> None:
        """Start working in the background."""
        ...

    async def stop(self) -> None:
        """Finish and stop."""
        ...

    def state(self) -> dict[str, Any]:
        """What ``/health`` and ``/webhook-status`` show of it."""
        ...


@attrs.define
class ReceiverRuntime:
    """Everything ``create_app`` wired; the lifespan calls ``start`` and ``stop``."""

    settings: Settings
    clock: Clock
    journal: SqliteJournal
    store: UploadStore
    worker: DeliveryWorker
    tunnel: Tunnel | None = None
    dispatcher: Service | None = None
    secrets: list[str] = attrs.Factory(list)
    started: bool = False

    def current_secrets(self) -> list[str]:
        """The signing secrets in force now (registration may add one at run time)."""
        return self.secrets

    async def start(self) -> None:
        """Open storage, resume the backlog, start the worker, notifier and tunnel."""
        self.journal.open()
        if not self.secrets:
            log.warning(
                "signature verification is OFF: no webhook secret is set "
                "(set POSTFLOW_WEBHOOK_SECRET to verify Frame.io signatures)"
            )
        await self.worker.start()
        if self.dispatcher is not None:
            await self.dispatcher.start()
        if self.tunnel is not None:
            try:
                await self.tunnel.start()
            except TunnelError as exc:
                log.error("tunnel failed to start: %s", exc)
        self.started = True
        log.info(
            "receiver started on %s (store=%s, data=%s)",
            self.settings.local_url,
            self.settings.store,
            self.settings.data_dir,
        )

    async def stop(self) -> None:
        """Stop the tunnel, drain the backlog, flush notifications, close storage."""
        if self.tunnel is not None:
            await self.tunnel.stop()
        await self.worker.stop()
        if self.dispatcher is not None:
            await self.dispatcher.stop()
        await self.journal.close()
        await self.store.close()
        self.started = False
        log.info("receiver stopped")
