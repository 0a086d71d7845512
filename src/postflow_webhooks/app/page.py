"""``PageViews`` for the status page: the receiver at a glance, the files, one file's timeline."""

from __future__ import annotations

from typing import Any

from postflow_webhooks.app.presenters import iso, present_finding
from postflow_webhooks.app.status import RuntimeStatusViews
from postflow_webhooks.app.watching import Watcher
from postflow_webhooks.domain.records import UploadRecord
from postflow_webhooks.domain.statuses import PostflowStatus


def _row(record: UploadRecord) -> dict[str, Any]:
    """A file as the list shows it: small, so a page of 200 stays light."""
    status = record.status
    return {
        "file_id": record.file_id,
        "name": record.name,
        "status": status.name if status else None,
        "status_label": status.label if status else None,
        "version": record.version,
        "comment_count": record.comment_count,
        "updated_at": iso(record.updated_at or record.created_at),
        "deleted": record.deleted,
    }


class RuntimePageViews:
    """What the page shows, from the same snapshot as ``/health``."""

    def __init__(self, status: RuntimeStatusViews, watcher: Watcher) -> None:
        self._status = status
        self._watcher = watcher

    async def overview(self) -> dict[str, Any]:
        """Health and its reasons, backlog, the last hour, tunnel, Frame.io, Discord, files."""
        watcher = self._watcher
        runtime = watcher.runtime
        snap = await watcher.snapshot()
        stats, reading = snap.stats, snap.reading
        by_status = reading.files_by_status
        frameio = self._status.frameio()
        alerts = self._status.alerts()
        notifier = self._status.notifier()
        return {
            "generated_at": iso(snap.at),
            "health": {
                "status": snap.verdict.value,
                "reasons": [present_finding(f) for f in snap.findings],
            },
            "backlog": {
                "pending": stats.backlog,
                "oldest_at": iso(reading.oldest_pending_at),
                "deferred": reading.deferred,
                "deferred_since": iso(reading.oldest_deferred_at),
                "deferred_reason": reading.deferred_reason,
            },
            "deliveries": {
                "total": stats.total_events,
                "rejected_total": sum(stats.rejections.values()),
                "last_hour": watcher.counts.last_hour(),
            },
            "quarantined": stats.quarantined,
            "dead_letters": stats.notifications_dead,
            "notifications_pending": stats.notifications_pending,
            "tunnel": self._status.tunnel_info(),
            "frameio": {
                "configured": frameio is not None,
                **(frameio or {}),
                "registration": self._status.registration(),
            },
            "discord": {
                "status": notifier if notifier["enabled"] else None,
                "alerts": alerts["destination"],
            },
            "incidents": alerts["open_incidents"],
            "signature_verification": (
                "locked"
                if runtime.secrets.locked
                else ("on" if runtime.secrets.required() else "off")
            ),
            "statuses": [
                {"name": s.name, "label": s.label, "count": by_status.get(s.name, 0)}
                for s in PostflowStatus
            ],
            "files": {"total": sum(by_status.values()), "revision": reading.revision},
        }

    async def files(
        self, status: PostflowStatus | None, search: str | None, offset: int, limit: int
    ) -> dict[str, Any]:
        """A page of tracked files, newest change first, filtered by status and name."""
        records, total, revision = await self._watcher.store.browse(
            status=status, search=search, offset=offset, limit=limit
        )
        return {
            "total": total,
            "offset": offset,
            "limit": limit,
            "status": status.name if status else None,
            "q": search,
            "revision": revision,
            "files": [_row(r) for r in records],
        }

    async def file(self, file_id: str) -> dict[str, Any] | None:
        """One file: history, comments, links and the deliveries waiting for Frame.io."""
        return await self._status.upload(file_id)
