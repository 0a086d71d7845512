"""The composition root: the one place adapters are chosen and wired.

``create_app(settings, *, store=None, notifier=None, tunnel=None,
file_details=None, clock=None)`` returns a Starlette app. Anything passed in
replaces the configured adapter (tests and PostFlow do this). Nothing is opened
here: resources open in the lifespan and close on shutdown, so
``uvicorn --factory postflow_webhooks.app.composition:create_app`` works.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette

from postflow_webhooks.adapters.clock import SystemClock
from postflow_webhooks.adapters.cloudflared import (
    CloudflaredConfig,
    CloudflaredTunnel,
    require_public_exposure_allowed,
)
from postflow_webhooks.adapters.http import WebhookReceiver, build_http_app
from postflow_webhooks.app import worker_host
from postflow_webhooks.app.handoff import Doorbell
from postflow_webhooks.app.parts import (
    build_dispatcher,
    build_frameio,
    build_journal,
    build_store,
    build_worker,
)
from postflow_webhooks.app.runtime import ReceiverRuntime, Service, WorkerHandle
from postflow_webhooks.app.settings import Settings, load_settings
from postflow_webhooks.app.status import RuntimeStatusViews
from postflow_webhooks.app.worker import DeliveryWorker
from postflow_webhooks.app.worker_process import ReportedNotifier, WorkerProcess
from postflow_webhooks.domain.ports import Clock, FileDetails, Notifier, Tunnel, UploadStore


def build_tunnel(settings: Settings, secret_set: bool) -> Tunnel | None:
    """The configured tunnel; refuses a public URL without a signing secret."""
    config = CloudflaredConfig.from_settings(
        settings, log_file=settings.log_dir / "webhook_tunnel.log"
    )
    if config is None:
        return None
    require_public_exposure_allowed(secret_set, settings.allow_insecure_public)
    return CloudflaredTunnel(config)


def build_runtime(
    settings: Settings,
    *,
    store: UploadStore | None = None,
    notifier: Notifier | None = None,
    tunnel: Tunnel | None = None,
    file_details: FileDetails | None = None,
    clock: Clock | None = None,
) -> ReceiverRuntime:
    """Wire every part for ``settings``; nothing is opened yet.

    The worker runs in a process of its own (``worker_process.py``) when
    ``settings.worker_process`` is on and every part it uses comes from the
    settings; an injected store, notifier, file-details port or clock lives
    in this process, so the worker then runs here too.
    """
    injected = any(part is not None for part in (store, notifier, file_details, clock))
    clock = clock or SystemClock()
    shared_sqlite = store is None and settings.store == "sqlite"
    store = store or build_store(settings)
    frameio = None
    if file_details is None:
        frameio = build_frameio(settings, clock)
        file_details = frameio.details if frameio else None
    secrets = [settings.webhook_secret] if settings.webhook_secret else []
    if not secrets and frameio is not None:
        stored = frameio.stored_secret()
        secrets = [stored] if stored else []
    if tunnel is None:
        tunnel = build_tunnel(settings, secret_set=bool(secrets))
    worker: WorkerHandle
    local_worker: DeliveryWorker | None = None
    dispatcher: Service
    if settings.worker_process and not injected:
        remote = WorkerProcess(settings, worker_host.main)
        journal = build_journal(settings, on_commit=remote, owns_uploads=shared_sqlite)
        worker, dispatcher = remote, ReportedNotifier(remote)
    else:
        doorbell = Doorbell()
        journal = build_journal(settings, on_commit=doorbell, owns_uploads=shared_sqlite)
        local = build_dispatcher(settings, journal, clock, notifier)
        worker = local_worker = build_worker(
            settings,
            journal,
            store,
            clock,
            details=file_details,
            doorbell=doorbell,
            dispatcher=local,
        )
        dispatcher = local
    return ReceiverRuntime(
        settings=settings,
        clock=clock,
        journal=journal,
        store=store,
        worker=worker,
        local_worker=local_worker,
        tunnel=tunnel,
        dispatcher=dispatcher,
        frameio=frameio,
        secrets=secrets,
    )


def create_app(
    settings: Settings | None = None,
    *,
    store: UploadStore | None = None,
    notifier: Notifier | None = None,
    tunnel: Tunnel | None = None,
    file_details: FileDetails | None = None,
    clock: Clock | None = None,
) -> Starlette:
    """The receiver as a Starlette app; settings default to the environment's."""
    settings = settings or load_settings(os.environ)
    runtime = build_runtime(
        settings,
        store=store,
        notifier=notifier,
        tunnel=tunnel,
        file_details=file_details,
        clock=clock,
    )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    receiver = WebhookReceiver(
        runtime.journal,
        runtime.clock,
        runtime.current_secrets,
        on_accepted=runtime.local_worker.recent.put if runtime.local_worker else None,
    )
    app = build_http_app(
        receiver,
        RuntimeStatusViews(runtime),
        signature_required=bool(runtime.secrets),
        lifespan=lifespan,
        public_status=settings.public_status,
    )
    app.state.runtime = runtime
    return app
