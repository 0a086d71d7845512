"""``StatusViews`` and ``WatchViews`` for the HTTP endpoints, read from the running receiver."""

from __future__ import annotations

from typing import Any

from postflow_webhooks.app.metrics import render
from postflow_webhooks.app.presenters import (
    iso,
    present_dead_letter,
    present_deferred,
    present_finding,
    present_last_event,
    present_record,
    present_tunnel,
)
from postflow_webhooks.app.runtime import ReceiverRuntime
from postflow_webhooks.app.watching import Snapshot, Watcher
from postflow_webhooks.domain.endpoint import webhook_url
from postflow_webhooks.domain.health import Severity, Verdict
from postflow_webhooks.domain.ports import TunnelInfo
from postflow_webhooks.domain.statuses import PostflowStatus

MAX_PENDING_SHOWN = 100
MAX_DEAD_SHOWN = 20
# The findings that stop the receiver from accepting and applying deliveries (/readyz).
NOT_READY = frozenset(
    {"store_not_writable", "store_cannot_commit", "worker_stopped", "worker_failing"}
)


class RuntimeStatusViews:
    """Health, readiness, metrics, stats and tracked files of one ``ReceiverRuntime``."""

    def __init__(self, runtime: ReceiverRuntime, watcher: Watcher | None = None) -> None:
        watcher = watcher or runtime.watcher
        if watcher is None:
            raise ValueError("the runtime has no watcher: build it with build_runtime()")
        self._runtime = runtime
        self._watcher = watcher

    def tunnel_info(self) -> dict[str, Any]:
        """The tunnel's state (``tunnel_info``)."""
        tunnel = self._runtime.tunnel
        return present_tunnel(tunnel.info() if tunnel is not None else TunnelInfo())

    def notifier(self) -> dict[str, Any]:
        """The status channel's state (``notifications`` in ``/health``)."""
        runtime = self._runtime
        skipped = runtime.worker.unannounced_total
        if runtime.dispatcher is None:
            return {"enabled": False, "destination": "disabled", "skipped": skipped}
        return {"enabled": True, **runtime.dispatcher.state(), "skipped": skipped}

    def registration(self) -> dict[str, Any] | None:
        """Where our Frame.io webhook points, when the registrar runs."""
        status = self._runtime.registrar_status()
        if status is None:
            return None
        return {
            "webhook_id": status.webhook_id,
            "registered_url": status.registered_url,
            "wanted_url": status.wanted_url,
            "pending": status.pending,
            "updates": status.updates,
            "last_synced_at": iso(status.last_synced_at),
            "last_error": status.last_error,
        }

    def frameio(self) -> dict[str, Any] | None:
        """The Frame.io adapter's sign-in state and API failures, when the API is on."""
        observer = self._watcher.observer
        if observer is None:
            return None
        return {
            "signin": observer.signin.value,
            "signin_detail": observer.signin_detail,
            "signin_since": iso(observer.signin_since),
            "failing_since": iso(observer.failing_since),
            "last_error": observer.last_error,
            "last_ok_at": iso(observer.last_ok_at),
        }

    def alerts(self) -> dict[str, Any]:
        """Whether alerts are sent, where, and the open incidents."""
        watcher = self._watcher
        channel = "disabled"
        if watcher.alerts is not None:
            channel = "alerts"
        elif watcher.announces_alerts:
            channel = "status"
        return {
            "channel": channel,
            "destination": None if watcher.alerts is None else watcher.alerts.state(),
            "open_incidents": [
                {
                    "reason": i.reason,
                    "title": i.title,
                    "detail": i.detail,
                    "started_at": iso(i.started_at),
                }
                for i in watcher.monitor.open
            ],
        }

    async def health(self) -> tuple[bool, dict[str, Any]]:
        """Every finding in words and by reason; 503 with any problem (``health.py``)."""
        snap = await self._watcher.snapshot(files=False)
        return snap.verdict is not Verdict.UNHEALTHY, self.health_body(snap)

    def health_body(self, snap: Snapshot) -> dict[str, Any]:
        """``/health``'s JSON for a snapshot."""
        runtime = self._runtime
        worker = runtime.worker
        tracker = runtime.tracker_sync
        failure = runtime.storage.commit_failure()
        oldest = snap.reading.oldest_pending_at
        return {
            "status": snap.verdict.value,
            "problems": [f.message for f in snap.findings if f.severity is Severity.PROBLEM],
            "warnings": [f.message for f in snap.findings if f.severity is Severity.WARNING],
            "reasons": [present_finding(f) for f in snap.findings],
            "store": {
                "engine": "postgres" if runtime.settings.store == "postgres" else "sqlite",
                "database": runtime.store_label,
                "writable": snap.store_error is None and failure is None,
                "commit_failure": None
                if failure is None
                else {
                    "reason": failure.reason,
                    "detail": failure.detail,
                    "since": iso(failure.since),
                },
                "tracker": None if tracker is None else tracker.state(),
            },
            "worker": {
                "alive": worker.alive,
                "processed": worker.processed_total,
                "last_pass_at": iso(worker.last_pass_at),
            },
            "reconciliation": _reconciliation(runtime),
            "roles": runtime.roles.state(),
            "backlog": snap.stats.backlog if snap.readable else None,
            "backlog_oldest_at": iso(oldest),
            "backlog_oldest_age_s": round((snap.at - oldest).total_seconds(), 3)
            if oldest
            else None,
            "deferred": {
                "count": snap.reading.deferred,
                "since": iso(snap.reading.oldest_deferred_at),
                "reason": snap.reading.deferred_reason,
            },
            "quarantined": snap.stats.quarantined,
            "signature_verification": _verification(runtime),
            "tunnel_info": self.tunnel_info(),
            "frameio": self.frameio(),
            "frameio_webhook": self.registration(),
            "notifications": self.notifier(),
            "alerts": self.alerts(),
        }

    async def readiness(self) -> tuple[bool, dict[str, Any]]:
        """Ready when the database can be written and the worker applies deliveries."""
        snap = await self._watcher.snapshot(files=False)
        blocking = [f for f in snap.findings if f.reason in NOT_READY]
        ready = self._runtime.started and not blocking
        reasons = [present_finding(f) for f in blocking]
        if not self._runtime.started:
            reasons.append(
                {
                    "reason": "not_started",
                    "severity": "problem",
                    "message": "the receiver is starting or stopping",
                    "since": None,
                }
            )
        return ready, {"status": "ready" if ready else "not_ready", "reasons": reasons}

    async def metrics(self) -> tuple[bytes, str]:
        """The Prometheus exposition."""
        return render(self._watcher, await self._watcher.snapshot())

    async def webhook_status(self) -> dict[str, Any]:
        """The seed's stats plus backlog, rejections, tunnel and notifier state."""
        runtime = self._runtime
        stats = await runtime.counters.stats()
        dead = (
            await runtime.dead_letters.dead_letters(limit=MAX_DEAD_SHOWN)
            if stats.notifications_dead
            else []
        )
        healthy, _ = await self.health()
        tunnel = self.tunnel_info()
        return {
            "total_events": stats.total_events,
            "events_by_type": stats.events_by_type,
            "webhook_status": "active" if healthy else "unhealthy",
            "tunnel_info": tunnel,
            "last_event": present_last_event(stats.last_event),
            "backlog": stats.backlog,
            "quarantined": stats.quarantined,
            "rejections": stats.rejections,
            "rejected_total": sum(stats.rejections.values()),
            "duplicates": stats.duplicates,
            "signature_verification": _verification(runtime),
            "local_webhook_url": webhook_url(runtime.settings.local_url),
            "public_webhook_url": tunnel["webhook_url"],
            "frameio_webhook": self.registration(),
            "review_field": {
                "field": runtime.settings.review_field,
                "options": runtime.settings.review_mapping.shown(),
            },
            "unmapped_review_options_seen": list(stats.unmapped_review_options),
            "unknown_statuses_seen": list(stats.unknown_statuses),
            "notifications": {
                **self.notifier(),
                "pending": stats.notifications_pending,
                "dead_letters": stats.notifications_dead,
                "recent_dead_letters": [present_dead_letter(letter) for letter in dead],
            },
        }

    async def uploads(
        self, status: PostflowStatus | None, offset: int, limit: int
    ) -> dict[str, Any]:
        """A page of tracked files."""
        store = self._runtime.records
        records = await store.list_records(status=status, offset=offset, limit=limit)
        total = await store.count(status=status)
        waiting = await self._runtime.desk.deferred(limit=MAX_PENDING_SHOWN)
        return {
            "total": total,
            "offset": offset,
            "limit": limit,
            "status": status.name if status else None,
            "uploads": [present_record(r) for r in records],
            "pending_enrichment": [present_deferred(d) for d in waiting],
        }

    async def upload(self, file_id: str) -> dict[str, Any] | None:
        """One tracked file with its history."""
        record = await self._runtime.records.find(file_id)
        waiting = [
            present_deferred(d)
            for d in await self._runtime.desk.deferred(limit=MAX_PENDING_SHOWN)
            if d.file_id == file_id
        ]
        backlog = await self._runtime.desk.waiting(file_id)
        if record is None:
            if not waiting:
                return None  # 404, even while its first deliveries wait to be applied
            return {
                "file_id": file_id,
                "tracked": False,
                "backlog": backlog,
                "pending_enrichment": waiting,
            }
        return {
            **present_record(record, history=True),
            "tracked": True,
            "backlog": backlog,
            "pending_enrichment": waiting,
        }


def _reconciliation(runtime: ReceiverRuntime) -> dict[str, Any] | None:
    """This process's reconciliation passes (it runs with the worker role); ``None``: no API."""
    reconciler = runtime.reconciler
    if reconciler is None:
        return None
    return {"passes": reconciler.passes, "account_known": reconciler.account_id is not None}


def _verification(runtime: ReceiverRuntime) -> str:
    """``on``, ``off``, or ``locked`` (required, but no secret in force yet)."""
    if runtime.secrets.locked:
        return "locked"
    return "on" if runtime.secrets.required() else "off"
