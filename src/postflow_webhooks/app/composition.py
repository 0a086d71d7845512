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
    require_complete,
    require_public_exposure_allowed,
    restart_retrying,
)
from postflow_webhooks.adapters.frameio import FrameioAdapter, FrameioConfig, retry_policy
from postflow_webhooks.adapters.frameio.borrowed import BorrowedTokens
from postflow_webhooks.adapters.http import WebhookReceiver, build_http_app
from postflow_webhooks.adapters.http.metering import RequestCounts
from postflow_webhooks.adapters.payload import remembering_reader
from postflow_webhooks.adapters.prometheus import PrometheusMetrics
from postflow_webhooks.adapters.tracker import FILE_NAME, JsonTracker
from postflow_webhooks.app.datadir import DataDirectoryLock
from postflow_webhooks.app.health import Thresholds
from postflow_webhooks.app.logs import escape_request_values
from postflow_webhooks.app.metrics import pass_reporter
from postflow_webhooks.app.notifying import (
    announce_policy,
    build_dispatchers,
    build_notifier,
    name_directory,
)
from postflow_webhooks.app.page import RuntimePageViews
from postflow_webhooks.app.policies import Policies
from postflow_webhooks.app.runtime import Closer, ReceiverRuntime
from postflow_webhooks.app.secrets import SigningSecrets
from postflow_webhooks.app.settings import Settings, load_settings
from postflow_webhooks.app.sharing import SharedStateSync
from postflow_webhooks.app.status import RuntimeStatusViews
from postflow_webhooks.app.stores import build_store
from postflow_webhooks.app.watching import Watcher
from postflow_webhooks.domain.alerts import ALERTS_DESTINATION
from postflow_webhooks.domain.ports import Clock, FileDetails, Notifier, Tracker, Tunnel
from postflow_webhooks.domain.records import DEFAULT_DESTINATION
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
        return FrameioAdapter(
            config, clock=clock, retrying=retry_policy(), review_field=settings.review_field
        )
    if borrowed_auth is None:
        return None
    return FrameioAdapter(
        borrowed_frameio_config(settings),
        clock=clock,
        retrying=retry_policy(),
        tokens=BorrowedTokens(borrowed_auth),
        review_field=settings.review_field,
    )


def build_tunnel(settings: Settings, secret_set: bool) -> Tunnel | None:
    """The configured tunnel; refuses a public URL when no secret is, or will be, in force."""
    config = CloudflaredConfig.from_settings(
        settings, log_file=settings.log_dir / "webhook_tunnel.log"
    )
    if config is None:
        return None
    require_complete(config)
    require_public_exposure_allowed(secret_set, settings.allow_insecure_public)
    return CloudflaredTunnel(config, retrying=restart_retrying(config.restart))


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
    metrics = PrometheusMetrics()
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
    checks = []
    if tracker is None and settings.store == "json":
        json_tracker = JsonTracker(settings.data_dir / FILE_NAME)
        closers.append(json_tracker.close)
        checks.append(json_tracker.check)
        tracker = json_tracker
    if notifier is None:
        discord = build_notifier(settings)
        if discord is not None:
            closers.append(discord.aclose)
        notifier = discord

    alerts_url = settings.discord_alerts_url if settings.alerts else None
    alerts_notifier = None
    if alerts_url and alerts_url != settings.discord_webhook_url:
        alerts_notifier = build_notifier(settings, alerts_url)
        if alerts_notifier is not None:
            closers.append(alerts_notifier.aclose)
    reserved = [ALERTS_DESTINATION] if alerts_notifier is not None else []
    dispatcher = build_dispatchers(
        settings, notifier, outbox, clock, policies, closers, reserved=reserved
    )
    alerts = None
    if alerts_notifier is not None:
        alerts = NotificationDispatcher(
            outbox,
            outbox,
            alerts_notifier,
            clock,
            outage_backoff=policies.notification_outage,
            route=ALERTS_DESTINATION,
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
        announce=announce_policy(settings, notifier),
        review=settings.review_mapping,
        directory=name_directory(settings, frameio) if dispatcher is not None else None,
        batch_size=settings.worker_batch,
        after_commit=after_commit,
        report=pass_reporter(metrics),
    )
    db.on_deliveries = worker.wake
    store.listen(worker.wake, [part.wake for part in (dispatcher, alerts) if part is not None])

    registrar = reconciler = sharing = None
    if frameio is not None:

        async def on_secret(secret: str) -> None:
            secrets.add(secret)
            if sharing is not None:  # every receiver of a shared store accepts it
                await sharing.publish_secret(secret)

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
        # Without a configured account, the PostFlow facade gives one when PostFlow
        # registers its webhook (``create_webhook_sync(account_id=...)``).
        reconciler = Reconciler(
            frameio.details,
            records,
            worker.apply_external,
            account_id=frameio.config.account_id or None,
        )
    if store.shared_state is not None:
        sharing = SharedStateSync(
            store.shared_state,
            secrets,
            registrar=registrar,
            holds_registrar=lambda: store.roles.holds("registrar"),
        )
    runtime = ReceiverRuntime(
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
        sharing=sharing,
        closers=closers,
        checks=checks,
        roles=store.roles,
        store_label=store.label,
    )
    runtime.watcher = Watcher(
        runtime,
        store=store.watch,
        incidents=store.incidents,
        counts=RequestCounts(),
        metrics=metrics,
        thresholds=Thresholds(settings.tunnel_down_threshold, settings.backlog_age_threshold),
        observer=frameio.observer if frameio is not None else None,
        check_signin=frameio.check_signin if frameio is not None else None,
        alerts=alerts,
        announce_alerts=settings.alerts and (notifier is not None or alerts is not None),
        alerts_separate=alerts is not None,
        alerts_destination=ALERTS_DESTINATION if alerts is not None else DEFAULT_DESTINATION,
        check_interval=settings.alert_check_interval,
        resolve_after=settings.alert_resolve_after,
    )
    return runtime


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
    escape_request_values()
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
    watcher = runtime.watcher
    assert watcher is not None
    views = RuntimeStatusViews(runtime, watcher)
    app = build_http_app(
        receiver,
        views,
        signature_required=runtime.secrets.required,
        lifespan=lifespan,
        public_status=settings.public_status,
        watch=views,
        page=RuntimePageViews(views, watcher),
        counts=watcher.counts,
        status_token=settings.status_token,
    )
    app.state.runtime = runtime
    app.state.count_refusal = runtime.count_refusal
    app.state.receiver = receiver
    return app
