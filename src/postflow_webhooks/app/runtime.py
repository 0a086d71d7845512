"""The running receiver: the wired parts, started and stopped in order, all in one event loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import attrs

from postflow_webhooks.app.datadir import DataDirectoryLock
from postflow_webhooks.app.roles import SoleRoles
from postflow_webhooks.app.secrets import SigningSecrets
from postflow_webhooks.app.settings import Settings
from postflow_webhooks.domain.endpoint import webhook_url
from postflow_webhooks.domain.errors import StorageError, TunnelError
from postflow_webhooks.domain.ports import (
    Clock,
    CommitHealth,
    Counters,
    DeadLetters,
    DeliveryDesk,
    DeliveryInbox,
    EventReader,
    RecordStore,
    Retention,
    Role,
    RoleLeases,
    Tunnel,
)
from postflow_webhooks.service.dispatcher import NotificationDispatcher
from postflow_webhooks.service.reconcile import Reconciler
from postflow_webhooks.service.registration import RegistrarStatus, WebhookRegistrar
from postflow_webhooks.service.retention import prune_periodically
from postflow_webhooks.service.routing import Dispatchers
from postflow_webhooks.service.tracker_sync import TrackerSync
from postflow_webhooks.service.worker import DeliveryWorker

if TYPE_CHECKING:
    from postflow_webhooks.app.sharing import SharedStateSync
    from postflow_webhooks.app.watching import Watcher

log = logging.getLogger("postflow_webhooks")

Closer = Callable[[], Awaitable[None]]

# How often to look for work nobody rang about: ``replay`` (another process)
# puts deliveries and notifications back in the database directly.
LOOK_AGAIN_SECONDS = 1.0


class Storage(CommitHealth, Protocol):
    """The durable store as a resource: opened at start, closed at the end."""

    def open(self) -> None:
        """Create or migrate it; ``StorageError`` naming the fix when it cannot be used."""
        ...

    async def close(self) -> None:
        """Commit what is queued and release it."""
        ...

    async def changed(self) -> bool:
        """True when something was committed since the last call."""
        ...

    async def recheck(self) -> None:
        """After a failed commit, try a small one, so health recovers with the cause."""
        ...


@attrs.define
class ReceiverRuntime:
    """Everything ``create_app`` wired; the lifespan calls ``start`` and ``stop``."""

    settings: Settings
    clock: Clock
    lock: DataDirectoryLock
    storage: Storage
    inbox: DeliveryInbox
    read_event: EventReader
    counters: Counters
    desk: DeliveryDesk
    records: RecordStore
    dead_letters: DeadLetters
    retention: Retention
    worker: DeliveryWorker
    secrets: SigningSecrets
    dispatcher: Dispatchers | None = None
    tracker_sync: TrackerSync | None = None
    tunnel: Tunnel | None = None
    registrar: WebhookRegistrar | None = None
    reconciler: Reconciler | None = None
    watcher: Watcher | None = None
    # With a shared store: the registrar's status and the signing secret, through it.
    sharing: SharedStateSync | None = None
    closers: list[Closer] = attrs.Factory(list)
    # Files to read before anything listens (PostFlow's tracker file); each raises
    # ``StorageError`` naming the file and the fix.
    checks: list[Callable[[], None]] = attrs.Factory(list)
    roles: RoleLeases = attrs.Factory(SoleRoles)
    store_label: str = ""
    started: bool = False
    opened: bool = False
    start_error: str | None = None
    _tasks: list[asyncio.Task[None]] = attrs.Factory(list)
    _counting: set[asyncio.Task[None]] = attrs.Factory(set)
    _reconciling: asyncio.Task[None] | None = None
    _public_url: str | None = None

    def open(self) -> None:
        """Take the data directory, check the files, open the database (before the port is bound)."""
        if self.opened:
            return
        self.lock.acquire()
        try:
            for check in self.checks:
                check()
            self.storage.open()
        except BaseException:
            self.lock.release()
            raise
        self.opened = True

    async def start(self) -> None:
        """Open storage, resume the backlog, start every background part."""
        self.open()
        if not self.secrets.required():
            log.warning(
                "signature verification is OFF: no webhook secret is set "
                "(set POSTFLOW_WEBHOOK_SECRET to verify Frame.io signatures)"
            )
        if self.tracker_sync is not None:
            await self.tracker_sync.adopt()
            await self.tracker_sync.start()
        await self.storage.changed()  # the baseline: the worker's first pass sees the rest
        if self.sharing is not None:
            await self.sharing.step()  # the shared secret and status, before the first request
        await self.roles.start(self._role_list())
        self._spawn(self._look_again_periodically(), "look-again")
        if self.sharing is not None:
            self._spawn(self.sharing.run_periodically(), "shared-state")
        keep = timedelta(days=self.settings.retention_days)
        self._spawn(prune_periodically(self.retention, self.clock, keep=keep), "retention")
        if self.tunnel is not None:
            self.tunnel.subscribe(self._announce_url)
            if self.registrar is not None:
                self.tunnel.subscribe(self._new_public_url)
            self._spawn(self._start_tunnel(self.tunnel), "tunnel-start")
        if self.watcher is not None:
            await self.watcher.start()
        self.started = True
        tracked = await self.records.count()
        data_dir = Path(os.path.abspath(self.settings.data_dir))
        log.info(
            "receiver started on %s (data: %s, %d tracked file(s))",
            self.settings.local_url,
            data_dir,
            tracked,
            extra={
                "local_url": self.settings.local_url,
                "data_dir": str(data_dir),
                "tracked_files": tracked,
            },
        )

    async def stop(self) -> None:
        """Stop the tunnel and API jobs, apply the backlog, flush notifications, close storage."""
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        if self.watcher is not None:
            await self.watcher.stop()
        if self.tunnel is not None:
            await self.tunnel.stop()
        await self.roles.stop()
        if self.tracker_sync is not None:
            await self.tracker_sync.stop()
        for close in self.closers:
            with contextlib.suppress(Exception):
                await close()
        if self.opened:
            await self.storage.close()
            self.lock.release()
            self.opened = False
        self.started = False
        log.info("receiver stopped")

    def _role_list(self) -> list[Role]:
        """The background roles, in the order they are gained at start and lost at stop.

        The reconciler goes with the worker: both write records, and one writer
        at a time keeps each file's changes in order.
        """
        roles = []
        if self.registrar is not None:
            roles.append(Role("registrar", self._gain_registrar, self.registrar.aclose))
        roles.append(Role("worker", self._gain_worker, self._lose_worker))
        if self._senders():
            roles.append(Role("dispatcher", self._gain_dispatcher, self._lose_dispatcher))
        if self.watcher is not None:
            roles.append(Role("alerts", self.watcher.lead, self.watcher.follow))
        return roles

    def _senders(self) -> list[Dispatchers | NotificationDispatcher]:
        """Every destination's dispatcher: the status channels', and the alerts channel's."""
        alerts = self.watcher.alerts if self.watcher is not None else None
        return [part for part in (self.dispatcher, alerts) if part is not None]

    async def _gain_dispatcher(self) -> None:
        for part in self._senders():
            await part.start()

    async def _lose_dispatcher(self) -> None:
        for part in self._senders():
            await part.stop()

    async def _gain_worker(self) -> None:
        await self.worker.start()
        if self.reconciler is not None:
            interval = self.settings.reconcile_interval
            work = self.reconciler.run_periodically(interval)
            self._reconciling = asyncio.create_task(work, name="reconcile")

    async def _lose_worker(self) -> None:
        task, self._reconciling = self._reconciling, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.worker.stop()

    async def _gain_registrar(self) -> None:
        if self.registrar is None:
            return
        if self.sharing is not None and self.sharing.registrar_status is not None:
            self.registrar.resume(self.sharing.registrar_status)
        if self._public_url is not None:
            await self.registrar.on_new_public_url(self._public_url)

    def registrar_status(self) -> RegistrarStatus | None:
        """Where our Frame.io webhook points: the same on every receiver of a shared store.

        The registrar role's holder shows its own status (and shares it); the
        others show the one last read from the store. ``None`` without a registrar.
        """
        if self.registrar is None:
            return None
        shared = self.sharing.registrar_status if self.sharing is not None else None
        if shared is not None and not self.roles.holds("registrar"):
            return shared
        return self.registrar.status()

    async def _new_public_url(self, public_url: str) -> None:
        """Every receiver learns the URL; only the registrar role's holder registers it."""
        self._public_url = public_url
        if self.registrar is not None and self.roles.holds("registrar"):
            await self.registrar.on_new_public_url(public_url)

    def count_refusal(self, reason: str) -> None:
        """Count a request refused outside the webhook endpoint (connection limits, bad queries)."""
        task = asyncio.get_running_loop().create_task(self._count_refusal(reason))
        self._counting.add(task)
        task.add_done_callback(self._counting.discard)

    async def _count_refusal(self, reason: str) -> None:
        try:
            await self.inbox.reject(reason)
        except StorageError as exc:
            log.warning("could not count a refused request (%s): %s", reason, exc)

    def _spawn(self, work: Awaitable[None], name: str) -> None:
        async def run() -> None:
            await work

        self._tasks.append(asyncio.create_task(run(), name=name))

    async def _look_again_periodically(self) -> None:
        """Wake the worker and the dispatcher when another process changed the database.

        While commits fail (disk full, say), also try a small one each time, so
        ``/health`` recovers by itself once the cause is gone.
        """
        while True:
            await asyncio.sleep(LOOK_AGAIN_SECONDS)
            try:
                if self.storage.commit_failure() is not None:
                    await self.storage.recheck()
                changed = await self.storage.changed()
            except StorageError:
                changed = True
            if changed:
                self.worker.wake()
                for part in self._senders():
                    part.wake()

    async def _start_tunnel(self, tunnel: Tunnel) -> None:
        try:
            await tunnel.start()
        except TunnelError as exc:
            log.error("tunnel failed: %s", exc)

    async def _announce_url(self, public_url: str) -> None:
        log.info("public URL: %s", public_url)
        log.info("webhook URL for Frame.io: %s", webhook_url(public_url))
