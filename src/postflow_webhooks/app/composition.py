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
from datetime import timedelta

from starlette.applications import Starlette

from postflow_webhooks.adapters.clock import SystemClock
from postflow_webhooks.adapters.http import WebhookReceiver, build_http_app
from postflow_webhooks.adapters.jsonfile import FILE_NAME, JsonUploadStore
from postflow_webhooks.adapters.sqlite import SqliteJournal, SqliteUploadStore
from postflow_webhooks.adapters.sqlite.journal import DATABASE_NAME
from postflow_webhooks.app.runtime import ReceiverRuntime
from postflow_webhooks.app.settings import Settings, load_settings
from postflow_webhooks.app.status import RuntimeStatusViews
from postflow_webhooks.app.worker import DeliveryWorker, Doorbell
from postflow_webhooks.domain.ports import Clock, FileDetails, Notifier, Tunnel, UploadStore


def build_store(settings: Settings) -> UploadStore:
    """The configured upload store."""
    if settings.store == "json":
        return JsonUploadStore(settings.data_dir / FILE_NAME)
    return SqliteUploadStore(settings.data_dir / DATABASE_NAME)


def build_runtime(
    settings: Settings,
    *,
    store: UploadStore | None = None,
    notifier: Notifier | None = None,
    tunnel: Tunnel | None = None,
    file_details: FileDetails | None = None,
    clock: Clock | None = None,
) -> ReceiverRuntime:
    """Wire every part for ``settings``; nothing is opened yet."""
    clock = clock or SystemClock()
    doorbell = Doorbell()
    shared_sqlite = store is None and settings.store == "sqlite"
    journal = SqliteJournal(
        settings.data_dir / DATABASE_NAME, on_commit=doorbell.ring, owns_uploads=shared_sqlite
    )
    store = store or build_store(settings)
    worker = DeliveryWorker(
        journal,
        store,
        clock,
        details=file_details,
        doorbell=doorbell,
        batch_size=settings.worker_batch,
        retention=timedelta(days=settings.retention_days),
    )
    secrets = [settings.webhook_secret] if settings.webhook_secret else []
    return ReceiverRuntime(
        settings=settings,
        clock=clock,
        journal=journal,
        store=store,
        worker=worker,
        tunnel=tunnel,
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
        on_accepted=runtime.worker.recent.put,
    )
    app = build_http_app(
        receiver,
        RuntimeStatusViews(runtime),
        signature_required=settings.signature_required,
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    return app
