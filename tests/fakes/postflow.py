"""Stand-ins for PostFlow 4.3's own objects, written from ``shared/docs/postflow.md``.

- ``UploadTracker``: PostFlow's upload tracker. Entries live in
  ``tracking_data["uploads"]``; every change rewrites the whole file (not
  atomically, as PostFlow does); the status helpers store PostFlow's own
  ``UploadStatus`` values, emoji first; the approval filters compare exactly.
- ``WebhookService``: drives a manager the way PostFlow's ``WebhookService``
  does: builds it with PostFlow's arguments, starts it on a thread, waits for
  it, reads its public URL, watches ``tunnel_manager`` from a monitoring loop,
  wraps ``process_webhook_sync`` for its intelligent tracking, tests it with a
  V4 payload for a file nobody tracks, registers the Frame.io webhook, stops.
- ``FrameIOAuth``: PostFlow's Frame.io sign-in, an object whose async
  ``get_access_token()`` gives a bearer token (here from the fake IMS).

None of this is PostFlow's code; it reproduces the behaviour our facade must fit.
"""

from __future__ import annotations

import enum
import json
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx


class UploadStatus(enum.Enum):
    """PostFlow's own status values, as its tracker stores and compares them."""

    WAITING_APPROVAL = "⏳ WAITING_APPROVAL"
    QUEUED = "📋 QUEUED"
    APPROVED = "✅ APPROVED"
    UPLOADING = "🔄 UPLOADING"
    PROCESSING = "⚙️ PROCESSING"
    COMPLETED = "🎉 COMPLETED"
    FAILED = "❌ FAILED"
    REJECTED = "🚫 REJECTED"
    REPROCESSING = "🔄 REPROCESSING"


# A file found again on disk is skipped (not uploaded again) only with one of these.
SKIP_REUPLOAD = (
    "COMPLETED",
    "🎉 COMPLETED",
    "⏳ WAITING_APPROVAL",
    "📋 QUEUED",
    "🔄 UPLOADING",
    "⚙️ PROCESSING",
)


def _now() -> str:
    return datetime.now(UTC).isoformat()


class UploadTracker:
    """PostFlow's ``UploadTracker``: entries in ``tracking_data["uploads"]``, calls recorded."""

    def __init__(self, uploads: dict[str, Any] | None = None, path: Path | None = None) -> None:
        stamp = _now()
        self.path = path
        self.tracking_data: dict[str, Any] = {
            "version": "1.0",
            "created_at": stamp,
            "last_updated": stamp,
            "uploads": dict(uploads or {}),
        }
        self.calls: list[tuple[Any, ...]] = []
        self.saves = 0
        self.fail_next = 0
        self._lock = threading.Lock()

    def save(self) -> None:
        """Rewrite the whole file (PostFlow does so after every change)."""
        if self.fail_next:
            self.fail_next -= 1
            raise OSError("No space left on device: 'uploads_tracking.json'")
        self.saves += 1
        self.tracking_data["last_updated"] = _now()
        if self.path is not None:
            self.path.write_text(json.dumps(self.tracking_data, indent=2, ensure_ascii=False))

    # -- PostFlow's own side --------------------------------------------------
    def add_upload(
        self, file_path: str, shot_id: str, version: str, metadata: dict[str, Any] | None = None
    ) -> str:
        """A new upload, queued, not yet known to Frame.io; its id."""
        upload_id = f"{shot_id}_{version}_{Path(file_path).name}"
        entry = {
            "upload_id": upload_id,
            "file_path": file_path,
            "filename": Path(file_path).name,
            "shot_id": shot_id,
            "version": version,
            "created_at": _now(),
            "last_updated": _now(),
            "status": UploadStatus.QUEUED.value,
            "frameio_data": {"file_id": None, "upload_status": "PENDING"},
            **(metadata or {}),
        }
        with self._lock:
            self.tracking_data["uploads"][upload_id] = entry
            self.save()
        return upload_id

    def list_uploads(self, shot_id: str | None = None, status: str | None = None) -> list[Any]:
        """Entries, filtered by exact shot id and exact status value."""
        found = []
        for entry in self.tracking_data["uploads"].values():
            if shot_id and entry.get("shot_id") != shot_id:
                continue
            if status and entry.get("status") != status:
                continue
            found.append(entry)
        return found

    def get_pending_approvals(self) -> list[Any]:
        """Uploads waiting for approval (exact match on PostFlow's value)."""
        return self.list_uploads(status=UploadStatus.WAITING_APPROVAL.value)

    def get_approved_uploads(self) -> list[Any]:
        """Approved uploads (exact match on PostFlow's value)."""
        return self.list_uploads(status=UploadStatus.APPROVED.value)

    def would_upload_again(self, upload_id: str) -> bool:
        """What PostFlow's runner decides for a file found again on disk."""
        entry = self.get_upload(upload_id) or {}
        return entry.get("status") not in SKIP_REUPLOAD

    def get_stats(self) -> dict[str, Any]:
        """Counts by status value and how many are linked to Frame.io."""
        by_status: dict[str, int] = {}
        linked = 0
        for entry in self.tracking_data["uploads"].values():
            key = entry.get("status", "UNKNOWN")
            by_status[key] = by_status.get(key, 0) + 1
            linked += bool((entry.get("frameio_data") or {}).get("file_id"))
        return {
            "total": len(self.tracking_data["uploads"]),
            "by_status": by_status,
            "linked": linked,
        }

    # -- what the webhook manager calls ----------------------------------------
    def get_upload(self, upload_id: str) -> dict[str, Any] | None:
        """One upload entry, or None."""
        entry = self.tracking_data["uploads"].get(upload_id)
        return entry if isinstance(entry, dict) else None

    def update_upload(self, upload_id: str, updates: dict[str, Any]) -> bool:
        """Merge ``updates`` into an existing entry; a dotted key sets a nested field."""
        self.calls.append(("update_upload", upload_id))
        return self._update(upload_id, updates)

    def mark_processing(self, upload_id: str) -> bool:
        """The upload is being processed by Frame.io."""
        self.calls.append(("mark_processing", upload_id))
        return self._update(upload_id, {"status": UploadStatus.PROCESSING.value})

    def mark_completed(self, upload_id: str, frameio_data: dict[str, Any] | None = None) -> bool:
        """Complete, each item of ``frameio_data`` merged into the entry's own."""
        self.calls.append(("mark_completed", upload_id, frameio_data))
        updates: dict[str, Any] = {"status": UploadStatus.COMPLETED.value, "completed_at": _now()}
        for key, value in (frameio_data or {}).items():
            updates[f"frameio_data.{key}"] = value
        return self._update(upload_id, updates)

    def mark_failed(self, upload_id: str, error_message: str | None = None) -> bool:
        """The upload failed."""
        self.calls.append(("mark_failed", upload_id))
        return self._update(
            upload_id, {"status": UploadStatus.FAILED.value, "error_message": error_message}
        )

    def update_status(self, upload_id: str, status: UploadStatus | str, **kwargs: Any) -> bool:
        """Set any status; PostFlow's code passes its enum's value."""
        value = status.value if isinstance(status, UploadStatus) else status
        self.calls.append(("update_status", upload_id, value))
        return self._update(upload_id, {"status": value, **kwargs})

    def status_calls(self) -> list[tuple[Any, ...]]:
        """The status calls made so far (everything but update_upload)."""
        return [call for call in self.calls if call[0] != "update_upload"]

    def _update(self, upload_id: str, updates: dict[str, Any]) -> bool:
        with self._lock:
            entry = self.get_upload(upload_id)
            if entry is None:
                return False
            for key, value in updates.items():
                *parents, leaf = key.split(".")
                target = entry
                for parent in parents:
                    nested = target.get(parent)
                    if not isinstance(nested, dict):
                        nested = target[parent] = {}
                    target = nested
                target[leaf] = value
            entry["last_updated"] = _now()
            self.save()
        return True


class IntelligentTracker:
    """PostFlow's intelligent tracking: records every payload the wrapper shows it."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def process_webhook_intelligently(self, payload: dict[str, Any]) -> None:
        """Note one delivery."""
        with self._lock:
            self.seen.append(payload)


TEST_PAYLOAD = {
    "type": "file.ready",
    "account": {"id": "test_account"},
    "project": {"id": "test_project"},
    "workspace": {"id": "test_workspace"},
    "resource": {
        "id": "test_file_webhook",
        "type": "file",
        "name": "test_webhook.mp4",
        "status": "ready",
    },
    "user": {"id": "test_user"},
}


class WebhookService:
    """Drives a webhook manager the way PostFlow 4.3's ``WebhookService`` does."""

    def __init__(
        self,
        manager_class: Callable[..., Any],
        upload_tracker: Any,
        *,
        port: int,
        frameio_auth: Any = None,
        intelligent_tracking: bool = True,
        monitor_every: float = 0.1,
    ) -> None:
        self.manager_class = manager_class
        self.upload_tracker = upload_tracker
        self.port = port
        self.frameio_auth = frameio_auth
        self.intelligent_tracking = intelligent_tracking
        self.monitor_every = monitor_every
        self.manager: Any = None
        self.intelligent: IntelligentTracker | None = None
        self.is_running = False
        self.webhook_url: str | None = None
        self.errors: list[str] = []
        self.monitor_checks = 0
        self.unhealthy_seen = 0
        self._thread: threading.Thread | None = None

    def start_service(self, wait: float = 30.0) -> bool:
        """Build the manager, start it on a thread, wait for it, read its public URL."""
        try:
            self.manager = self.manager_class(
                upload_tracker=self.upload_tracker,
                webhook_port=self.port,
                frameio_auth=self.frameio_auth,
            )
        except Exception as exc:
            self.errors.append(f"start: {exc}")
            return False
        self._thread = threading.Thread(target=self._run, daemon=True, name="WebhookService")
        self._thread.start()
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and not self.is_running and self._thread.is_alive():
            time.sleep(0.05)
        if not self.is_running:
            return False
        self.webhook_url = self.manager.get_public_webhook_url()
        if self.intelligent_tracking:
            self._setup_intelligent_tracking()
        return True

    def start_service_with_shared_server(self) -> bool:
        """The other path: only the tunnel is started through ``tunnel_manager``."""
        self.manager = self.manager_class(
            upload_tracker=self.upload_tracker,
            webhook_port=self.port,
            use_cloudflare_tunnel=True,
            frameio_auth=self.frameio_auth,
        )
        if self.manager.tunnel_manager:
            tunnel_url = self.manager.tunnel_manager.start_webhook_tunnel(timeout=60)
            if not tunnel_url:
                return False
            self.manager.webhook_url = tunnel_url
            self.manager.webhook_data["tunnel_info"] = self.manager.tunnel_manager.get_tunnel_info()
        self.is_running = True
        self.webhook_url = self.manager.get_public_webhook_url()
        if self.intelligent_tracking:
            self._setup_intelligent_tracking()
        return True

    def _setup_intelligent_tracking(self) -> None:
        self.intelligent = IntelligentTracker()
        self.manager.intelligent_tracker = self.intelligent
        original = self.manager.process_webhook_sync
        intelligent = self.intelligent

        def enhanced(webhook_data: dict[str, Any]) -> None:
            original(webhook_data)
            intelligent.process_webhook_intelligently(webhook_data)

        self.manager.process_webhook_sync = enhanced

    def _run(self) -> None:
        try:
            self.manager.start_webhook_server()
            self.is_running = True
            while self.is_running:
                try:
                    self.monitor_checks += 1
                    tunnel = self.manager.tunnel_manager
                    if tunnel and not tunnel.is_tunnel_healthy():
                        self.unhealthy_seen += 1
                    time.sleep(self.monitor_every)
                except Exception as exc:
                    self.errors.append(f"monitor: {exc}")
                    time.sleep(self.monitor_every)
        except Exception as exc:
            self.errors.append(f"service: {exc}")
        finally:
            self.is_running = False

    def get_service_status(self) -> dict[str, Any]:
        """What PostFlow's dashboard shows: it reads these keys of ``get_webhook_stats()``."""
        stats = self.manager.get_webhook_stats()
        return {
            "webhook_stats": stats,
            "tunnel_info": stats.get("tunnel_info"),
            "events_processed": stats.get("total_events", 0),
            "last_event": stats.get("last_event"),
        }

    def configure_frameio_webhook(self, account_id: str, workspace_id: str, auth: Any) -> bool:
        """Register the Frame.io webhook once the public URL is known."""
        try:
            if not self.manager.get_public_webhook_url():
                return False
            return bool(
                self.manager.create_webhook_sync(
                    frameio_auth=auth,
                    account_id=account_id,
                    workspace_id=workspace_id,
                    webhook_name="PostFlow Webhook (Auto)",
                )
            )
        except Exception as exc:
            self.errors.append(f"configure: {exc}")
            return False

    def test_webhook(self) -> bool:
        """A V4 ``file.ready`` for a file nobody tracks; success unless it raises."""
        try:
            self.manager.process_webhook_sync(json.loads(json.dumps(TEST_PAYLOAD)))
        except Exception as exc:
            self.errors.append(f"test: {exc}")
            return False
        return True

    def stop_service(self) -> None:
        """Stop monitoring, stop the manager, wait for the thread."""
        self.is_running = False
        try:
            if self.manager:
                self.manager.stop_webhook_server()
        except Exception as exc:
            self.errors.append(f"stop: {exc}")
        if self._thread is not None:
            self._thread.join(10)


class FrameIOAuth:
    """PostFlow's Frame.io sign-in: an async ``get_access_token()`` (tokens from the fake IMS)."""

    def __init__(self, token_url: str, client_id: str, client_secret: str) -> None:
        self._token_url = token_url
        self._form = {
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": client_secret,
            "scope": "openid,AdobeID,frame.s2s.all",
        }
        self._token: str | None = None
        self.calls = 0
        self.broken = False

    async def get_access_token(self) -> str:
        """A valid bearer token, fetched once and reused."""
        self.calls += 1
        if self.broken:
            raise RuntimeError("PostFlow's sign-in expired")
        if self._token is None:
            async with httpx.AsyncClient() as client:
                answer = await client.post(self._token_url, data=self._form)
                answer.raise_for_status()
                self._token = str(answer.json()["access_token"])
        return self._token

    def is_token_valid(self) -> bool:
        """True once a token was fetched."""
        return self._token is not None
