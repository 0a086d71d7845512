"""The composition root: the one place adapters are chosen, built and wired.

``create_app(settings, *, tracker=None, notifier=None, tunnel=None,
file_details=None, clock=None, policies=None)`` returns a Starlette app.
Anything passed in replaces the configured part (PostFlow passes its tracker,
tests pass fakes); the topology is the same either way: one process, one
event loop, one database file. Nothing is opened here: resources open in the
lifespan, so ``uvicorn --factory postflow_webhooks.app.composition:create_app``
works.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import attrs
from starlette.applications import Starlette

from postflow_webhooks.adapters.clock import SystemClock
from postflow_webhooks.adapters.cloudflared import (
    CloudflaredConfig,
    CloudflaredTunnel,
    require_public_exposure_allowed,
    restart_retrying,
)
from postflow_webhooks.adapters.discord import DiscordConfig, DiscordNotifier
from postflow_webhooks.adapters.frameio import FrameioAdapter, FrameioConfig, retry_policy
from postflow_webhooks.adapters.frameio.borrowed import BorrowedTokens
from postflow_webhooks.adapters.http import WebhookReceiver, build_http_app
from postflow_webhooks.adapters.payload import remembering_reader
from postflow_webhooks.adapters.postgres import (
    DELIVERIES_CHANNEL,
    OUTBOX_CHANNEL,
    PostgresDatabase,
    PostgresJournal,
    PostgresOutbox,
    PostgresRecords,
    PostgresRoles,
)
from postflow_webhooks.adapters.sqlite import (
    SqliteDatabase,
    SqliteJournal,
    SqliteOutbox,
    SqliteRecords,
)
from postflow_webhooks.adapters.tracker import FILE_NAME, JsonTracker
from postflow_webhooks.app.datadir import DataDirectoryLock
from postflow_webhooks.app.policies import Policies
from postflow_webhooks.app.roles import SoleRoles
from postflow_webhooks.app.runtime import Closer, ReceiverRuntime
from postflow_webhooks.app.secrets import SigningSecrets
from postflow_webhooks.app.settings import (
    Settings,
    SettingsError,
    load_settings,
    shared_store_problem,
)
from postflow_webhooks.app.status import RuntimeStatusViews
from postflow_webhooks.domain.announce import AnnouncePolicy
from postflow_webhooks.domain.ports import Clock, FileDetails, Notifier, Tracker, Tunnel
from postflow_webhooks.service.dispatcher import NotificationDispatcher
from postflow_webhooks.service.reconcile import Reconciler
from postflow_webhooks.service.registration import WebhookRegistrar
from postflow_webhooks.service.tracker_sync import TrackerSync
from postflow_webhooks.service.worker import DeliveryWorker


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


def borrowed_frameio_config(settings: Settings) -> FrameioConfig:
    """The Frame.io API settings when the host lends its tokens (no credentials of ours)."""
    config = FrameioConfig(
        client_id="",
        client_secret="",
        account_id=settings.frameio_account_id or "",
        workspace_id=settings.frameio_workspace_id or "",
        token_cache_path=settings.data_dir / "frameio_token.json",
        webhook_secret_path=settings.data_dir / "frameio_webhook_secret",
        reconcile_interval=settings.reconcile_interval,
    )
    if settings.frameio_api_base:
        config = attrs.evolve(config, api_base=settings.frameio_api_base)
    return config


def build_frameio(
    settings: Settings, clock: Clock, *, borrowed_auth: object | None = None
) -> FrameioAdapter | None:
    """The Frame.io API adapter: our own credentials, else the host's tokens, else none."""
    config = frameio_config(settings)
    if config is not None:
        return FrameioAdapter(config, clock=clock, retrying=retry_policy())
    if borrowed_auth is None:
        return None
    return FrameioAdapter(
        borrowed_frameio_config(settings),
        clock=clock,
        retrying=retry_policy(),
        tokens=BorrowedTokens(borrowed_auth),
    )


def build_tunnel(settings: Settings, secret_set: bool) -> Tunnel | None:
    """The configured tunnel; refuses a public URL when no secret is, or will be, in force."""
    config = CloudflaredConfig.from_settings(
        settings, log_file=settings.log_dir / "webhook_tunnel.log"
    )
    if config is None:
        return None
    require_public_exposure_allowed(secret_set, settings.allow_insecure_public)
    return CloudflaredTunnel(config, retrying=restart_retrying(config.restart))


def build_notifier(settings: Settings) -> DiscordNotifier | None:
    """The Discord notifier, when a webhook URL is configured."""
    if not settings.discord_webhook_url:
        return None
    return DiscordNotifier(
        DiscordConfig(
            webhook_url=settings.discord_webhook_url,
            username=settings.discord_username,
            avatar_url=settings.discord_avatar_url,
        )
    )


@attrs.frozen
class Store:
    """The configured database, by role, and how the roles are shared out."""

    storage: SqliteDatabase | PostgresDatabase
    journal: SqliteJournal | PostgresJournal
    records: SqliteRecords | PostgresRecords
    outbox: SqliteOutbox | PostgresOutbox
    roles: SoleRoles | PostgresRoles
    label: str

    @property
    def shared(self) -> bool:
        """True when several receivers may use this database at once."""
        return isinstance(self.storage, PostgresDatabase)


def build_store(settings: Settings, policies: Policies) -> Store:
    """SQLite in the data directory, or the shared PostgreSQL database; nothing opened yet."""
    problem = shared_store_problem(settings)
    if problem is not None:
        raise SettingsError(problem[0], "configuration", problem[1])
    if settings.store == "postgres" and settings.database_url:
        pg = PostgresDatabase(settings.database_url)
        roles = PostgresRoles(pg.conninfo, pg.label, reconnect=policies.store_reconnect)
        return Store(
            pg, PostgresJournal(pg), PostgresRecords(pg), PostgresOutbox(pg), roles, pg.label
        )
    db = SqliteDatabase.in_directory(settings.data_dir)
    return Store(
        db, SqliteJournal(db), SqliteRecords(db), SqliteOutbox(db), SoleRoles(), str(db.path)
    )


def build_runtime(
    settings: Settings,
    *,
    tracker: Tracker | None = None,
    notifier: Notifier | None = None,
    tunnel: Tunnel | None = None,
    file_details: FileDetails | None = None,
    clock: Clock | None = None,
    policies: Policies | None = None,
    frameio_auth: object | None = None,
) -> ReceiverRuntime:
    """Wire every part for ``settings``; nothing is opened yet.

    ``frameio_auth`` is the host's Frame.io sign-in (PostFlow's ``FrameIOAuth``),
    used for API calls when no credentials of ours are configured.
    """
    clock = clock or SystemClock()
    policies = policies or Policies()
    closers: list[Closer] = []
    read_event = remembering_reader()
    store = build_store(settings, policies)
    db, journal, records, outbox = store.storage, store.journal, store.records, store.outbox

    frameio = None
    if file_details is None:
        frameio = build_frameio(settings, clock, borrowed_auth=frameio_auth)
    if frameio is not None:
        file_details = frameio.details
        closers.append(frameio.aclose)
    stored = frameio.webhooks.secret_file if frameio else None
    has_secret = bool(SigningSecrets(settings.webhook_secret, stored).current())
    # Public before it has a secret, but able to register its webhook and get one:
    # every delivery is refused until then, rather than accepted unsigned.
    public = tunnel is not None or settings.tunnel != "off"
    locked = public and not has_secret and frameio is not None
    locked = locked and not settings.allow_insecure_public
    secrets = SigningSecrets(settings.webhook_secret, stored, locked=locked)
    if tunnel is None:
        tunnel = build_tunnel(settings, secret_set=has_secret or locked)
    if tracker is None and settings.store == "json":
        json_tracker = JsonTracker(settings.data_dir / FILE_NAME)
        closers.append(json_tracker.close)
        tracker = json_tracker
    if notifier is None:
        discord = build_notifier(settings)
        if discord is not None:
            closers.append(discord.aclose)
        notifier = discord

    dispatcher = None
    if notifier is not None:
        dispatcher = NotificationDispatcher(
            outbox, outbox, notifier, clock, outage_backoff=policies.notification_outage
        )
    tracker_sync = None
    if tracker is not None:
        tracker_sync = TrackerSync(records, tracker, backoff=policies.tracker_failure)
    wakes = [part.wake for part in (dispatcher, tracker_sync) if part is not None]

    def after_commit() -> None:
        for wake in wakes:
            wake()

    worker = DeliveryWorker(
        journal,
        records,
        read_event,
        clock,
        failure_backoff=policies.worker_failure,
        enrich_backoff=policies.enrichment,
        details=file_details,
        announce=AnnouncePolicy(
            enabled=notifier is not None,
            statuses=frozenset(settings.discord_statuses),
            comments=settings.discord_comments,
        ),
        batch_size=settings.worker_batch,
        after_commit=after_commit,
    )
    db.on_deliveries = worker.wake
    if isinstance(store.roles, PostgresRoles):
        store.roles.on_notify(DELIVERIES_CHANNEL, worker.wake)
        if dispatcher is not None:
            store.roles.on_notify(OUTBOX_CHANNEL, dispatcher.wake)

    registrar = reconciler = None
    if frameio is not None:

        async def on_secret(secret: str) -> None:
            secrets.add(secret)

        if tunnel is not None and frameio.auth is not None:
            # A shared store never creates the webhook: its new secret would reach one
            # receiver only. ``register`` creates it once; every receiver is given the secret.
            registrar = WebhookRegistrar(
                frameio.webhooks,
                clock,
                backoff=policies.registration,
                on_secret=on_secret,
                create_if_missing=not store.shared,
            )
        if frameio.config.account_id:
            reconciler = Reconciler(
                frameio.details,
                records,
                worker.apply_external,
                account_id=frameio.config.account_id,
            )
    return ReceiverRuntime(
        settings=settings,
        clock=clock,
        lock=DataDirectoryLock(settings.data_dir),
        storage=db,
        inbox=journal,
        read_event=read_event,
        counters=journal,
        desk=journal,
        records=records,
        dead_letters=outbox,
        retention=journal,
        worker=worker,
        secrets=secrets,
        dispatcher=dispatcher,
        tracker_sync=tracker_sync,
        tunnel=tunnel,
        registrar=registrar,
        reconciler=reconciler,
        closers=closers,
        roles=store.roles,
        store_label=store.label,
    )


def create_app(
    settings: Settings | None = None,
    *,
    tracker: Tracker | None = None,
    notifier: Notifier | None = None,
    tunnel: Tunnel | None = None,
    file_details: FileDetails | None = None,
    clock: Clock | None = None,
    policies: Policies | None = None,
    frameio_auth: object | None = None,
) -> Starlette:
    """The receiver as a Starlette app; settings default to the environment's."""
    settings = settings or load_settings(os.environ)
    runtime = build_runtime(
        settings,
        tracker=tracker,
        notifier=notifier,
        tunnel=tunnel,
        file_details=file_details,
        clock=clock,
        policies=policies,
        frameio_auth=frameio_auth,
    )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            await runtime.start()
        except Exception as exc:
            runtime.start_error = f"{type(exc).__name__}: {exc}"
            await runtime.stop()
            raise
        try:
            yield
        finally:
            await runtime.stop()

    receiver = WebhookReceiver(runtime.inbox, runtime.read_event, runtime.clock, runtime.secrets)
    app = build_http_app(
        receiver,
        RuntimeStatusViews(runtime),
        signature_required=runtime.secrets.required,
        lifespan=lifespan,
        public_status=settings.public_status,
    )
    app.state.runtime = runtime
    app.state.receiver = receiver
    return app
