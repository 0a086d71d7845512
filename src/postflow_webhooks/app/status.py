"""``StatusViews`` for the HTTP endpoints, read from the running receiver."""

from __future__ import annotations

from typing import Any

from postflow_webhooks.app.presenters import (
    iso,
    present_dead_letter,
    present_deferred,
    present_last_event,
    present_record,
    present_tunnel,
)
from postflow_webhooks.app.runtime import ReceiverRuntime
from postflow_webhooks.domain.endpoint import webhook_url
from postflow_webhooks.domain.errors import StorageError
from postflow_webhooks.domain.ports import TunnelInfo
from postflow_webhooks.domain.statuses import PostflowStatus

MAX_PENDING_SHOWN = 100
MAX_DEAD_SHOWN = 20


class RuntimeStatusViews:
    """Health, stats and tracked files of one ``ReceiverRuntime``."""

    def __init__(self, runtime: ReceiverRuntime) -> None:
        self._runtime = runtime

    def _tunnel(self) -> dict[str, Any]:
        tunnel = self._runtime.tunnel
        return present_tunnel(tunnel.info() if tunnel is not None else TunnelInfo())

    def _notifier(self) -> dict[str, Any]:
        runtime = self._runtime
        skipped = runtime.worker.unannounced_total
        if runtime.dispatcher is None:
            return {"enabled": False, "destination": "disabled", "skipped": skipped}
        return {"enabled": True, **runtime.dispatcher.state(), "skipped": skipped}

    def _registration(self) -> dict[str, Any] | None:
        registrar = self._runtime.registrar
        if registrar is None:
            return None
        status = registrar.status()
        return {
            "webhook_id": status.webhook_id,
            "registered_url": status.registered_url,
            "wanted_url": status.wanted_url,
            "pending": status.pending,
            "updates": status.updates,
            "last_synced_at": iso(status.last_synced_at),
            "last_error": status.last_error,
        }

    async def health(self) -> tuple[bool, dict[str, Any]]:
        """Healthy when storage answers and the worker runs; reasons listed either way."""
        runtime = self._runtime
        worker = runtime.worker
        problems: list[str] = []
        backlog: int | None = None
        try:
            backlog = (await runtime.counters.stats()).backlog
        except StorageError as exc:
            problems.append(f"storage: {exc}")
        if worker.last_error:
            problems.append(f"worker: {worker.last_error}")
        if not worker.alive and runtime.roles.holds("worker"):
            problems.append("worker: not running")
        notifier = self._notifier()
        warnings = []
        if notifier.get("destination_broken"):
            warnings.append("notifications: the Discord destination is broken")
        tunnel = runtime.tunnel.info() if runtime.tunnel is not None else None
        if tunnel is not None and tunnel.state == "failed":
            warnings.append(
                f"tunnel: failed ({tunnel.last_error or 'see logs/webhook_tunnel.log'})"
            )
        if runtime.secrets.locked:
            warnings.append(
                "signatures: no signing secret yet; every delivery is refused until the "
                "Frame.io webhook is registered"
            )
        tracker = runtime.tracker_sync
        if tracker is not None and tracker.last_error:
            warnings.append(f"tracker: PostFlow's tracker is behind ({tracker.last_error})")
        body = {
            "status": "unhealthy" if problems else ("degraded" if warnings else "ok"),
            "problems": problems,
            "warnings": warnings,
            "store": {
                "engine": runtime.settings.store
                if runtime.settings.store == "postgres"
                else "sqlite",
                "database": runtime.store_label,
                "writable": not problems,
                "tracker": None if tracker is None else tracker.state(),
            },
            "worker": {
                "alive": worker.alive,
                "processed": worker.processed_total,
                "last_pass_at": iso(worker.last_pass_at),
            },
            "roles": runtime.roles.state(),
            "backlog": backlog,
            "signature_verification": _verification(runtime),
            "tunnel_info": self._tunnel(),
            "notifications": notifier,
        }
        return not problems, body

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
        tunnel = self._tunnel()
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
            "signature_verification": _verification(runtime),
            "local_webhook_url": webhook_url(runtime.settings.local_url),
            "public_webhook_url": tunnel["webhook_url"],
            "frameio_webhook": self._registration(),
            "notifications": {
                **self._notifier(),
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
        if record is None:
            if not waiting:
                return None
            return {"file_id": file_id, "tracked": False, "pending_enrichment": waiting}
        return {
            **present_record(record, history=True),
            "tracked": True,
            "pending_enrichment": waiting,
        }


def _verification(runtime: ReceiverRuntime) -> str:
    """``on``, ``off``, or ``locked`` (required, but no secret in force yet)."""
    if runtime.secrets.locked:
        return "locked"
    return "on" if runtime.secrets.required() else "off"
