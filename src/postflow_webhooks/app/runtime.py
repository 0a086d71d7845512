"""The running receiver: the wired parts, started and stopped in order."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import datetime
from typing import Any, Protocol

import attrs

from postflow_webhooks.adapters.frameio import FrameioAdapter, WebhookRegistrar
from postflow_webhooks.adapters.sqlite import SqliteJournal
from postflow_webhooks.app.reconcile import reconcile_forever
from postflow_webhooks.app.settings import Settings
from postflow_webhooks.app.worker import DeliveryWorker
from postflow_webhooks.domain.errors import TunnelError
from postflow_webhooks.domain.ports import Clock, Tunnel, UploadStore

log = logging.getLogger("postflow_webhooks")

SECRET_RECHECK_SECONDS = 1.0


class WorkerHandle(Protocol):
    """What the runtime and the status views use of the worker, wherever it runs."""

    @property
    def alive(self) -> bool:
        """True while the worker runs."""
        ...

    @property
    def processed_total(self) -> int:
        """Deliveries processed since it started."""
        ...

    @property
    def last_pass_at(self) -> datetime | None:
        """When it last looked for work."""
        ...

    @property
    def last_error(self) -> str | None:
        """Its last error, if its last pass failed."""
        ...

    @property
    def pid(self) -> int | None:
        """The process it runs in, while it runs."""
        ...

    @property
    def restarts(self) -> int:
        """How many times its process was restarted after dying."""
        ...

    async def start(self) -> None:
        """Start working in the background."""
        ...

    async def stop(self) -> None:
        """Finish what is due and stop."""
        ...


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
    worker: WorkerHandle
    tunnel: Tunnel | None = None
    # The worker in this process, when it is here; it then reconciles too.
    local_worker: DeliveryWorker | None = None
    dispatcher: Service | None = None
    frameio: FrameioAdapter | None = None
    secrets: list[str] = attrs.Factory(list)
    registrar: WebhookRegistrar | None = None
    started: bool = False
    _tasks: list[asyncio.Task[None]] = attrs.Factory(list)
    _secret_stamp: int | None = None
    _secret_checked_at: float = float("-inf")

    def current_secrets(self) -> list[str]:
        """The signing secrets in force now (registration may add one at run time).

        A secret that ``postflow-webhooks register`` stored from another process
        is picked up within a second: the file's change time is checked at most
        once a second, so the request path pays no file I/O under load.
        """
        if self.frameio is not None:
            now = time.monotonic()
            if now - self._secret_checked_at >= SECRET_RECHECK_SECONDS:
                self._secret_checked_at = now
                self._reload_stored_secret()
        return self.secrets

    def _reload_stored_secret(self) -> None:
        assert self.frameio is not None
        try:
            stamp: int | None = self.frameio.config.webhook_secret_path.stat().st_mtime_ns
        except OSError:
            stamp = None
        if stamp == self._secret_stamp:
            return
        self._secret_stamp = stamp
        stored = self.frameio.stored_secret() if stamp is not None else None
        if stored:
            self.add_secret(stored)

    def add_secret(self, secret: str) -> None:
        """Accept deliveries signed with a new secret (a webhook was just created)."""
        if secret not in self.secrets:
            self.secrets.insert(0, secret)
            log.info("a new webhook signing secret is in force")

    async def start(self) -> None:
        """Open storage, resume the backlog, start the worker, notifier, tunnel, API jobs."""
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
            self.tunnel.subscribe(self._announce_url)
            if self.frameio is not None:
                self.registrar = self.frameio.registrar(on_secret=self._on_secret)
                self.tunnel.subscribe(self.registrar.on_new_public_url)
            self._tasks.append(asyncio.create_task(self._start_tunnel(), name="tunnel-start"))
        if self.frameio is not None and self.local_worker is not None:
            reconcile = reconcile_forever(
                self.frameio, self.store, self.local_worker, self.settings.reconcile_interval
            )
            self._tasks.append(asyncio.create_task(reconcile, name="reconcile"))
        self.started = True
        log.info(
            "receiver started on %s (store=%s, data=%s)",
            self.settings.local_url,
            self.settings.store,
            self.settings.data_dir,
        )

    async def stop(self) -> None:
        """Stop the tunnel and API jobs, drain the backlog, flush notifications, close storage."""
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        if self.tunnel is not None:
            await self.tunnel.stop()
        if self.registrar is not None:
            await self.registrar.aclose()
        await self.worker.stop()
        if self.dispatcher is not None:
            await self.dispatcher.stop()
        if self.frameio is not None:
            await self.frameio.aclose()
        await self.journal.close()
        await self.store.close()
        self.started = False
        log.info("receiver stopped")

    async def _start_tunnel(self) -> None:
        assert self.tunnel is not None
        try:
            await self.tunnel.start()
        except TunnelError as exc:
            log.error("tunnel failed: %s", exc)

    async def _announce_url(self, public_url: str) -> None:
        log.info("public URL: %s", public_url)
        log.info("webhook URL for Frame.io: %s/frameio-webhook", public_url)

    async def _on_secret(self, secret: str) -> None:
        self.add_secret(secret)
