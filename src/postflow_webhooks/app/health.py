"""The health rules: what the receiver observes of itself, turned into findings.

``assess`` is a pure function of an ``Observations`` value, so every rule is
tested without a server. The rule for the severity (docs/operations.md,
"Watching it"): a **problem** (``/health`` 503) means deliveries are being
lost or are not being applied; a **warning** (200, ``degraded``) means
something is late, held or needs a person, and nothing is lost yet.
``REASONS`` lists every reason with its severity and what it means.
"""

from __future__ import annotations

from datetime import datetime

import attrs

from postflow_webhooks.domain.health import Finding, Severity
from postflow_webhooks.domain.journal import CommitFailure
from postflow_webhooks.domain.ports import TunnelInfo

P, W = Severity.PROBLEM, Severity.WARNING

REASONS: dict[str, tuple[Severity, str]] = {
    "store_not_writable": (P, "the database cannot be read or written"),
    "store_cannot_commit": (P, "deliveries cannot be committed: disk full, read-only, locked"),
    "worker_stopped": (P, "the worker that applies deliveries is not running"),
    "worker_failing": (P, "the worker's last pass failed"),
    "backlog_stale": (P, "the oldest pending delivery is older than backlog_age_threshold"),
    "frameio_signin_refused": (P, "Adobe IMS (or Frame.io) refuses the API credentials"),
    "frameio_signin_expired": (P, "the Frame.io user sign-in expired and cannot be refreshed"),
    "tunnel_down": (P, "the tunnel has not been ready for tunnel_down_threshold seconds"),
    "public_url_not_registered": (P, "Frame.io's webhook could not be pointed at the public URL"),
    "tunnel_not_ready": (W, "the tunnel is starting or reconnecting (under the threshold)"),
    "public_url_registering": (W, "Frame.io's webhook is being pointed at a new public URL"),
    "frameio_api_failing": (W, "Frame.io's API or Adobe IMS answers with errors or not at all"),
    "deliveries_deferred": (W, "deliveries wait for Frame.io's API and are retried"),
    "deliveries_quarantined": (W, "deliveries were set aside and need `replay`"),
    "notifications_dead_lettered": (W, "Discord refused messages for good; they need `replay`"),
    "discord_broken": (W, "the Discord destination for status messages is broken"),
    "alerts_destination_broken": (W, "the Discord destination for alerts is broken"),
    "tracker_behind": (W, "PostFlow's tracker could not be written"),
    "signatures_locked": (W, "no signing secret yet: deliveries are refused until it comes"),
}

# Reasons that open an incident, and the title of its alert.
ALERT_TITLES: dict[str, str] = {
    "tunnel_down": "Tunnel down",
    "public_url_not_registered": "Frame.io webhook not pointed at the tunnel",
    "frameio_signin_refused": "Frame.io sign-in failing",
    "frameio_signin_expired": "Frame.io sign-in failing",
    "backlog_stale": "Deliveries are not being applied",
    "store_cannot_commit": "Deliveries cannot be stored",
    "deliveries_quarantined": "A delivery was quarantined",
    "notifications_dead_lettered": "A notification was dead-lettered",
    "discord_broken": "Discord destination broken",
}


@attrs.frozen
class Thresholds:
    """When a slow condition becomes a problem, in seconds."""

    tunnel_down: float = 60.0
    backlog_age: float = 120.0


@attrs.frozen
class FrameioView:
    """What the Frame.io adapter has seen: sign-in state and API failures."""

    signin: str = "unknown"
    signin_detail: str | None = None
    signin_since: datetime | None = None
    failing_since: datetime | None = None
    last_error: str | None = None


@attrs.frozen
class DestinationView:
    """A Discord destination's state."""

    broken: bool = False
    reason: str | None = None
    since: datetime | None = None


@attrs.frozen
class RegistrationView:
    """Where our Frame.io webhook points, as far as this process knows."""

    pending: bool = False
    wanted_url: str | None = None
    registered_url: str | None = None
    last_error: str | None = None


@attrs.frozen
class Observations:
    """Everything the rules look at, read at one moment."""

    now: datetime
    config_dir: str = "config"
    store_error: str | None = None
    commit_failure: CommitFailure | None = None
    worker_alive: bool = True
    worker_error: str | None = None
    oldest_pending_at: datetime | None = None
    deferred: int = 0
    deferred_since: datetime | None = None
    deferred_reason: str | None = None
    quarantined: int = 0
    dead_letters: int = 0
    tunnel: TunnelInfo | None = None
    tunnel_down_since: datetime | None = None
    registration: RegistrationView | None = None
    frameio: FrameioView | None = None
    discord: DestinationView | None = None
    alerts_destination: DestinationView | None = None
    tracker_error: str | None = None
    signatures_locked: bool = False


def _many(count: int, one: str, more: str) -> str:
    return f"{count} {one if count == 1 else more}"


def _finding(reason: str, message: str, since: datetime | None = None) -> Finding:
    return Finding(reason, REASONS[reason][0], message, since)


def _seconds(since: datetime | None, now: datetime) -> float:
    return (now - since).total_seconds() if since is not None else 0.0


def assess(seen: Observations, limits: Thresholds) -> list[Finding]:
    """Every finding, problems first, each with its reason, words and start."""
    found = [
        *_store_and_worker(seen, limits),
        *_frameio(seen),
        *_tunnel(seen, limits),
        *_held(seen),
    ]
    return sorted(found, key=lambda f: f.severity is not Severity.PROBLEM)


def _store_and_worker(seen: Observations, limits: Thresholds) -> list[Finding]:
    found = []
    if seen.store_error:
        found.append(_finding("store_not_writable", f"storage: {seen.store_error}"))
    failure = seen.commit_failure
    if failure is not None:
        found.append(
            _finding(
                "store_cannot_commit",
                f"storage: cannot commit ({failure.reason}): {failure.detail}",
                failure.since,
            )
        )
    if seen.worker_error:
        found.append(_finding("worker_failing", f"worker: {seen.worker_error}"))
    if not seen.worker_alive:
        found.append(_finding("worker_stopped", "worker: not running; restart the receiver"))
    oldest = seen.oldest_pending_at
    age = _seconds(oldest, seen.now)
    if oldest is not None and age > limits.backlog_age:
        why = (
            f"; {_many(seen.deferred, 'waits', 'wait')} for Frame.io ({seen.deferred_reason})"
            if seen.deferred
            else ""
        )
        found.append(
            _finding(
                "backlog_stale",
                f"backlog: the oldest pending delivery arrived {age:.0f} s ago "
                f"(threshold {limits.backlog_age:g} s){why}",
                oldest,
            )
        )
    if seen.deferred:
        found.append(
            _finding(
                "deliveries_deferred",
                f"deferred: {_many(seen.deferred, 'delivery', 'deliveries')} waiting for "
                "Frame.io, retried with backoff "
                f"({seen.deferred_reason or 'no reason recorded'})",
                seen.deferred_since,
            )
        )
    return found


def _frameio(seen: Observations) -> list[Finding]:
    view = seen.frameio
    if view is None:
        return []
    found = []
    config = f"{seen.config_dir}/frameio_config.json"
    if view.signin == "refused":
        found.append(
            _finding(
                "frameio_signin_refused",
                f"frameio: sign-in refused ({view.signin_detail}); check client_id and "
                f"client_secret in {config} (or POSTFLOW_FRAMEIO_CLIENT_ID/_SECRET), and that "
                "the credential has the Frame.io product",
                view.signin_since,
            )
        )
    elif view.signin == "expired":
        found.append(
            _finding(
                "frameio_signin_expired",
                f"frameio: sign-in expired ({view.signin_detail}); run `postflow-webhooks auth`",
                view.signin_since,
            )
        )
    if view.failing_since is not None:
        found.append(
            _finding(
                "frameio_api_failing",
                f"frameio: the API is failing ({view.last_error}); deliveries that need it "
                "wait and are retried",
                view.failing_since,
            )
        )
    return found


def _tunnel(seen: Observations, limits: Thresholds) -> list[Finding]:
    info = seen.tunnel
    found = []
    if info is not None and not info.ready:
        since = seen.tunnel_down_since
        down = _seconds(since, seen.now)
        cause = info.last_error or "see logs/webhook_tunnel.log"
        if down >= limits.tunnel_down:
            found.append(
                _finding(
                    "tunnel_down",
                    f"tunnel: {info.state} ({cause}); down for {down:.0f} s, so Frame.io "
                    "cannot reach the receiver and gives up on deliveries after ~4 minutes",
                    since,
                )
            )
        else:
            found.append(_finding("tunnel_not_ready", f"tunnel: {info.state} ({cause})", since))
    registration = seen.registration
    if registration is not None and registration.pending:
        if registration.last_error:
            found.append(
                _finding(
                    "public_url_not_registered",
                    f"frameio webhook: not pointed at {registration.wanted_url} "
                    f"({registration.last_error}); retried with backoff",
                )
            )
        else:
            found.append(
                _finding(
                    "public_url_registering",
                    f"frameio webhook: being pointed at {registration.wanted_url}",
                )
            )
    return found


def _held(seen: Observations) -> list[Finding]:
    found = []
    if seen.discord is not None and seen.discord.broken:
        found.append(
            _finding(
                "discord_broken",
                f"notifications: the Discord destination is broken ({seen.discord.reason}); "
                "set a working POSTFLOW_DISCORD_WEBHOOK_URL and restart",
                seen.discord.since,
            )
        )
    alerts = seen.alerts_destination
    if alerts is not None and alerts.broken:
        found.append(
            _finding(
                "alerts_destination_broken",
                f"alerts: the Discord destination for alerts is broken ({alerts.reason}); "
                "set a working POSTFLOW_DISCORD_ALERTS_URL and restart",
                alerts.since,
            )
        )
    if seen.quarantined:
        found.append(
            _finding(
                "deliveries_quarantined",
                f"quarantine: {_many(seen.quarantined, 'delivery', 'deliveries')} set aside; see "
                "`postflow-webhooks replay`",
            )
        )
    if seen.dead_letters:
        found.append(
            _finding(
                "notifications_dead_lettered",
                f"notifications: {_many(seen.dead_letters, 'message', 'messages')} "
                "dead-lettered; see `postflow-webhooks replay`",
            )
        )
    if seen.signatures_locked:
        found.append(
            _finding(
                "signatures_locked",
                "signatures: no signing secret yet; every delivery is refused until the "
                "Frame.io webhook is registered",
            )
        )
    if seen.tracker_error:
        found.append(
            _finding(
                "tracker_behind", f"tracker: PostFlow's tracker is behind ({seen.tracker_error})"
            )
        )
    return found
