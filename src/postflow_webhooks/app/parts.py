"""Builders for the parts both processes assemble: stores, Frame.io, the worker side.

``composition.py`` wires the receiver; ``worker_host.py`` wires the worker
process. Both build their worker, dispatcher and Frame.io adapter here, so the
two can never be configured differently.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Protocol

from postflow_webhooks.adapters.discord import DiscordConfig
from postflow_webhooks.adapters.frameio import FrameioAdapter, FrameioConfig
from postflow_webhooks.adapters.jsonfile import FILE_NAME, JsonUploadStore
from postflow_webhooks.adapters.sqlite import SqliteJournal, SqliteUploadStore
from postflow_webhooks.adapters.sqlite.journal import DATABASE_NAME
from postflow_webhooks.app.dispatcher import NotificationDispatcher
from postflow_webhooks.app.handoff import Doorbell
from postflow_webhooks.app.settings import Settings
from postflow_webhooks.app.worker import DeliveryWorker
from postflow_webhooks.domain.ports import Clock, FileDetails, Notifier, UploadStore


def build_store(settings: Settings) -> UploadStore:
    """The configured upload store."""
    if settings.store == "json":
        return JsonUploadStore(settings.data_dir / FILE_NAME)
    return SqliteUploadStore(settings.data_dir / DATABASE_NAME)


class Bell(Protocol):
    """Something to ring after each commit (the worker's doorbell, here or in its process)."""

    def ring(self) -> None:
        """Wake whoever waits for new deliveries."""
        ...


def build_journal(
    settings: Settings, *, on_commit: Bell | None, owns_uploads: bool
) -> SqliteJournal:
    """The journal in the data directory; ``on_commit`` is rung after each commit."""
    return SqliteJournal(
        settings.data_dir / DATABASE_NAME,
        on_commit=on_commit.ring if on_commit is not None else None,
        owns_uploads=owns_uploads,
    )


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


def build_frameio(settings: Settings, clock: Clock) -> FrameioAdapter | None:
    """The Frame.io API adapter, when API credentials are configured."""
    config = frameio_config(settings)
    return FrameioAdapter(config, clock=clock) if config else None


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


def build_worker(
    settings: Settings,
    journal: SqliteJournal,
    store: UploadStore,
    clock: Clock,
    *,
    details: FileDetails | None,
    doorbell: Doorbell,
    dispatcher: NotificationDispatcher,
) -> DeliveryWorker:
    """The delivery worker; it queues what the dispatcher would send and wakes it after."""
    return DeliveryWorker(
        journal,
        store,
        clock,
        details=details,
        doorbell=doorbell,
        batch_size=settings.worker_batch,
        retention=timedelta(days=settings.retention_days),
        after_commit=dispatcher.wake,
        gate=dispatcher,
    )
