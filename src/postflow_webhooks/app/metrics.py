"""Every metric ``/metrics`` shows, read at scrape time from where the figure already lives.

Counters the database keeps (deliveries by type, refusals by reason, sent and
dead-lettered notifications) survive restarts; the others count since the
process started. Event types outside the status table are counted as
``other``, so a stream of odd deliveries cannot grow the number of series.
The list, with each metric's meaning, is in docs/operations.md ("Watching it").
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from postflow_webhooks.adapters.frameio.observed import SigninState
from postflow_webhooks.adapters.prometheus import Family, PrometheusMetrics
from postflow_webhooks.app.watching import Snapshot, Watcher
from postflow_webhooks.domain.events import EVENT_KINDS
from postflow_webhooks.domain.rules import Outcome
from postflow_webhooks.domain.statuses import PostflowStatus
from postflow_webhooks.service.dispatcher import NotificationDispatcher
from postflow_webhooks.service.worker import PassReport, Settled

APPLIED = frozenset(outcome.value for outcome in Outcome)


def event_label(event_type: str) -> str:
    """The event type as a label: its name when the status table knows it, else ``other``."""
    return event_type if event_type in EVENT_KINDS else "other"


def pass_reporter(metrics: PrometheusMetrics) -> PassReport:
    """The worker's report hook: count each settled delivery, time each applied one."""

    def report(settled: Sequence[Settled], committed_at: datetime) -> None:
        committed = committed_at.timestamp()
        applied = metrics.applied
        for event_type, outcome, received_at in settled:
            latency = committed - received_at.timestamp() if outcome in APPLIED else None
            applied(event_type if event_type in EVENT_KINDS else "other", outcome, latency)

    return report


def _family(
    name: str, help: str, kind: str, samples: dict[tuple[str, ...], float], *labels: str
) -> Family:
    return Family(name, help, kind, labels, tuple(sorted(samples.items())))


def _one(name: str, help: str, value: float, kind: str = "gauge") -> Family:
    return Family(name, help, kind, (), (((), float(value)),))


def _by_label(counts: dict[str, int]) -> dict[tuple[str, ...], float]:
    merged: dict[tuple[str, ...], float] = {}
    for key, value in counts.items():
        label = (event_label(key),)
        merged[label] = merged.get(label, 0.0) + value
    return merged


def families(watcher: Watcher, snap: Snapshot) -> list[Family]:
    """Every metric read at scrape time."""
    stats, reading = snap.stats, snap.reading
    oldest = reading.oldest_pending_at
    found = [
        _one("postflow_up", "1 while the receiver answers.", 1),
        _family(
            "postflow_build_info", "The running release.", "gauge", {(_release(),): 1}, "version"
        ),
        _one("postflow_health_status", "0 ok, 1 degraded, 2 unhealthy.", snap.verdict.exit_code),
        _family(
            "postflow_health_reason",
            "1 for each finding of /health now, by reason and severity.",
            "gauge",
            {(f.reason, f.severity.value): 1 for f in snap.findings},
            "reason",
            "severity",
        ),
        _family(
            "postflow_deliveries_received",
            "Deliveries accepted (202), by event type (kept in the database).",
            "counter",
            _by_label(stats.events_by_type),
            "event_type",
        ),
        _family(
            "postflow_rejections",
            "Requests to the webhook refused, by reason (kept in the database).",
            "counter",
            {(reason,): n for reason, n in stats.rejections.items()},
            "reason",
        ),
        _one("postflow_backlog", "Deliveries accepted and not applied yet.", stats.backlog),
        _one(
            "postflow_backlog_oldest_age_seconds",
            "Age of the oldest pending delivery, 0 when none.",
            (snap.at - oldest).total_seconds() if oldest else 0.0,
        ),
        _one(
            "postflow_deliveries_deferred",
            "Deliveries waiting for Frame.io's API.",
            reading.deferred,
        ),
        _one(
            "postflow_quarantined_deliveries",
            "Deliveries set aside, waiting for `replay`.",
            stats.quarantined,
        ),
        _family(
            "postflow_tracked_files",
            "Tracked files by displayed status.",
            "gauge",
            {(s.name,): reading.files_by_status.get(s.name, 0) for s in PostflowStatus},
            "status",
        ),
        *_notifications(watcher, snap),
        *_tunnel(watcher),
        *_frameio(watcher),
        _family(
            "postflow_http_requests",
            "HTTP requests answered, by path, method and status (since start).",
            "counter",
            {
                (path, method, str(status) if status is not None else "none"): float(n)
                for (path, method, status), n in watcher.counts.requests.items()
            },
            "path",
            "method",
            "status",
        ),
        _family(
            "postflow_incident_open",
            "1 for each open incident (an alert was or would be sent).",
            "gauge",
            {(i.reason,): 1 for i in watcher.monitor.open},
            "reason",
        ),
    ]
    return found


def _notifications(watcher: Watcher, snap: Snapshot) -> list[Family]:
    stats, reading = snap.stats, snap.reading
    channels: dict[str, tuple[NotificationDispatcher, ...]] = {}
    if watcher.runtime.dispatcher is not None:
        channels["status"] = watcher.runtime.dispatcher.all
    if watcher.alerts is not None:
        channels["alerts"] = (watcher.alerts,)
    states = {name: _summed([d.state() for d in parts]) for name, parts in channels.items()}
    return [
        _family(
            "postflow_notifications",
            "Notifications settled, by result (kept in the database).",
            "counter",
            {
                ("sent",): reading.notifications_sent_total,
                ("dead_lettered",): reading.notifications_dead_total,
            },
            "result",
        ),
        _family(
            "postflow_notification_failures",
            "Sends that failed and will be retried (network, 5xx), by channel (since start).",
            "counter",
            {(name,): s["failed"] for name, s in states.items()},
            "channel",
        ),
        _family(
            "postflow_discord_rate_limit_waits",
            "Times Discord answered 429 and we waited, by channel (since start).",
            "counter",
            {(name,): s["rate_limited"] for name, s in states.items()},
            "channel",
        ),
        _family(
            "postflow_discord_destination_broken",
            "1 when a Discord channel is marked broken, by channel.",
            "gauge",
            {(name,): 1 if s["destination_broken"] else 0 for name, s in states.items()},
            "channel",
        ),
        _one(
            "postflow_notifications_pending",
            "Notifications waiting to be sent.",
            stats.notifications_pending,
        ),
        _one(
            "postflow_notifications_dead_letters",
            "Dead letters waiting for `replay`.",
            stats.notifications_dead,
        ),
    ]


def _summed(states: list[dict[str, Any]]) -> dict[str, float]:
    """One channel's figures over its destinations (status messages may have several)."""
    return {
        "failed": sum(float(s["failed"]) for s in states),
        "rate_limited": sum(float(s["rate_limited"]) for s in states),
        "destination_broken": float(any(s["destination_broken"] for s in states)),
    }


def _tunnel(watcher: Watcher) -> list[Family]:
    tunnel = watcher.runtime.tunnel
    if tunnel is None:
        return []
    info = tunnel.info()
    return [
        _one("postflow_tunnel_up", "1 while the tunnel is ready.", 1 if info.ready else 0),
        _one(
            "postflow_tunnel_restarts",
            "cloudflared restarts since start.",
            info.restarts,
            kind="counter",
        ),
        _one(
            "postflow_tunnel_url_changes",
            "New public URLs since start (the first one included).",
            watcher.url_changes,
            kind="counter",
        ),
    ]


def _frameio(watcher: Watcher) -> list[Family]:
    observer = watcher.observer
    if observer is None:
        return []
    return [
        _family(
            "postflow_frameio_api_calls",
            "Frame.io API calls, by how they ended (since start).",
            "counter",
            {(kind.value,): n for kind, n in observer.calls.items()},
            "result",
        ),
        _family(
            "postflow_frameio_token_requests",
            "Adobe IMS token requests, by result (since start).",
            "counter",
            {(result,): n for result, n in observer.token_requests.items()},
            "result",
        ),
        _family(
            "postflow_frameio_signin",
            "1 for the current sign-in state.",
            "gauge",
            {(s.value,): 1 if observer.signin is s else 0 for s in SigninState},
            "state",
        ),
    ]


def _release() -> str:
    try:
        return version("postflow-webhooks")
    except PackageNotFoundError:
        return "unknown"


def render(watcher: Watcher, snap: Snapshot) -> tuple[bytes, str]:
    """The exposition of every metric."""
    return watcher.metrics.render(families(watcher, snap))
