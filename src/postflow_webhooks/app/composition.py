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
from postflow_webhooks.adapters.cloudflared import (
    CloudflaredConfig,
    CloudflaredTunnel,
    require_public_exposure_allowed,
)
from postflow_webhooks.adapters.discord import DiscordConfig
from postflow_webhooks.adapters.frameio import FrameioAdapter, FrameioConfig
from postflow_webhooks.adapters.http import WebhookReceiver, build_http_app
from postflow_webhooks.adapters.jsonfile import FILE_NAME, JsonUploadStore
from postflow_webhooks.adapters.sqlite import SqliteJournal, SqliteUploadStore
from postflow_webhooks.adapters.sqlite.journal import DATABASE_NAME
from postflow_webhooks.app.dispatcher import NotificationDispatcher
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


def discord_config(settings: Settings) -> DiscordConfig:
    """The Discord notifier's settings."""
    return DiscordConfig(
        webhook_url=settings.discord_webhook_url,
        statuses=frozenset(settings.discord_statuses),
        comments=settings.discord_comments,
        username=settings.discord_username,
        avatar_url=settings.discord_avatar_url,
    )


def frameio_config(settings: Settings) -> FrameioConfig | None:
    """The Frame.io API settings, or ``None`` when no API credentials are configured."""
    if not (settings.frameio_client_id and settings.frameio_client_secret):
        return None
    values = {
        "client_id": settings.frameio_client_id,
        "client_secret": settings.frameio_client_secret,
        "account_id": settings.frameio_account_id,
        "workspace_id": settings.frameio_workspace_id,
        "redirect_uri": settings.frameio_redirect_uri,
    }
    endpoints = {
        "api_base": settings.frameio_api_base,
        "ims_token_url": settings.frameio_ims_token_url,
        "ims_authorize_url": settings.frameio_ims_authorize_url,
    }
    return FrameioConfig.from_mapping(
        values,
        source=str(settings.config_dir / "frameio_config.json"),
        data_dir=settings.data_dir,
        reconcile_interval=settings.reconcile_interval,
        **{key: value for key, value in endpoints.items() if value},
    )


def build_tunnel(settings: Settings, secret_set: bool) -> Tunnel | None:
    """The configured tunnel; refuses a public URL without a signing secret."""
    config = CloudflaredConfig.from_settings(
        settings, log_file=settings.log_dir / "webhook_tunnel.log"
    )
    if config is None:
        return None
    require_public_exposure_allowed(secret_set, settings.allow_insecure_public)
    return CloudflaredTunnel(config)


def build_dispatcher(
    settings: Settings, journal: SqliteJournal, clock: Clock, notifier: Notifier | None
) -> NotificationDispatcher:
    """The notification dispatcher: the given notifier, else Discord as configured."""
    config = discord_config(settings)
    if notifier is None:
        return NotificationDispatcher.from_config(config, journal, clock=clock)
    return NotificationDispatcher(
        journal, notifier, config=config, clock=clock, destination_key="injected"
    )


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
    frameio = None
    if file_details is None:
        config = frameio_config(settings)
        frameio = FrameioAdapter(config, clock=clock) if config else None
        file_details = frameio.details if frameio else None
    secrets = [settings.webhook_secret] if settings.webhook_secret else []
    if not secrets and frameio is not None:
        stored = frameio.stored_secret()
        secrets = [stored] if stored else []
    if tunnel is None:
        tunnel = build_tunnel(settings, secret_set=bool(secrets))
    dispatcher = build_dispatcher(settings, journal, clock, notifier)
    worker = DeliveryWorker(
        journal,
        store,
        clock,
        details=file_details,
        doorbell=doorbell,
        batch_size=settings.worker_batch,
        retention=timedelta(days=settings.retention_days),
        after_commit=dispatcher.wake,
    )
    return ReceiverRuntime(
        settings=settings,
        clock=clock,
        journal=journal,
        store=store,
        worker=worker,
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
        on_accepted=runtime.worker.recent.put,
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
