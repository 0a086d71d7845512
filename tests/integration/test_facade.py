"""The PostFlow facade in-process, with a tracker shaped like PostFlow's own."""

from __future__ import annotations

import json
import logging
import socket
from pathlib import Path
from typing import Any

import httpx
import pytest

from postflow_webhooks import FrameIOWebhookManager, create_app
from tests.support import free_port, signed_headers, wait_for


class UploadTracker:
    """A stand-in with PostFlow's tracker methods, recording every call."""

    def __init__(self) -> None:
        self.tracking_data: dict[str, Any] = {
            "version": "1.0",
            "uploads": {"up-1": {"filename": "shot_010.mov", "status": "UPLOADING 🔄", "size": 42}},
        }
        self.calls: list[tuple[str, str]] = []

    def get_upload(self, upload_id: str) -> dict[str, Any] | None:
        """One entry."""
        return self.tracking_data["uploads"].get(upload_id)

    def update_upload(self, upload_id: str, updates: dict[str, Any]) -> None:
        """Merge fields."""
        self.calls.append(("update_upload", upload_id))
        self.tracking_data["uploads"].setdefault(upload_id, {}).update(updates)

    def mark_processing(self, upload_id: str) -> None:
        """PostFlow's PROCESSING."""
        self.calls.append(("mark_processing", upload_id))
        self.tracking_data["uploads"][upload_id]["status"] = "PROCESSING ⚙️"

    def mark_completed(self, upload_id: str, frameio_data: dict[str, Any] | None = None) -> None:
        """PostFlow's COMPLETED, with links."""
        self.calls.append(("mark_completed", upload_id))
        entry = self.tracking_data["uploads"][upload_id]
        entry["status"] = "COMPLETED 🎉"
        entry["frameio_data"] = frameio_data

    def update_status(self, upload_id: str, status: str) -> None:
        """Any other label."""
        self.calls.append(("update_status", upload_id))
        self.tracking_data["uploads"][upload_id]["status"] = status


SECRET = "facade-secret"


def deliver(url: str, body: dict[str, Any]) -> int:
    """POST a signed delivery; the status code."""
    raw = json.dumps(body).encode()
    return httpx.post(
        f"{url}/frameio-webhook", content=raw, headers=signed_headers(SECRET, raw)
    ).status_code


def test_seed_integration_runs_and_statuses_land_in_postflows_tracker(tmp_path: Path) -> None:
    """The seed's code starts the receiver; deliveries update PostFlow's tracker its own way."""
    tracker = UploadTracker()
    port = free_port()
    manager = FrameIOWebhookManager(
        upload_tracker=tracker,
        webhook_port=port,
        use_cloudflare_tunnel=False,
        data_dir=tmp_path,
        webhook_secret=SECRET,
        environ={"POSTFLOW_CONFIG_DIR": str(tmp_path / "config")},
    )
    with manager:
        assert manager.last_error is None
        url = manager.local_url
        assert manager.get_public_webhook_url() is None
        file = {"id": "fio-1", "name": "shot_010.mov"}
        assert (
            deliver(
                url,
                {
                    "event_type": "file.upload.completed",
                    "resource": {**file, "status": "processing"},
                },
            )
            == 202
        )
        assert (
            deliver(
                url,
                {"event_type": "file.ready", "resource": {**file, "view_url": "https://f.io/v"}},
            )
            == 202
        )
        assert (
            deliver(
                url,
                {
                    "event_type": "review.status.changed",
                    "resource": {**file, "review_status": "approved"},
                },
            )
            == 202
        )
        wait_for(lambda: tracker.tracking_data["uploads"]["up-1"]["status"] == "APPROVED ✅")
        stats = manager.get_webhook_stats()
    entry = tracker.tracking_data["uploads"]["up-1"]
    assert entry["size"] == 42 and entry["frameio_data"]["file_id"] == "fio-1"
    assert ("mark_processing", "up-1") in tracker.calls
    assert ("mark_completed", "up-1") in tracker.calls
    assert ("update_status", "up-1") in tracker.calls
    assert list(tracker.tracking_data["uploads"]) == ["up-1"]
    for key in ("total_events", "events_by_type", "webhook_status", "tunnel_info", "last_event"):
        assert key in stats
    assert stats["total_events"] == 3
    assert stats["events_by_type"]["file.ready"] == 1
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{url}/health", timeout=1)


def test_start_fails_cleanly_when_the_port_is_taken(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A taken port: start returns False and the log names the port and the fix."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        manager = FrameIOWebhookManager(
            webhook_port=port,
            use_cloudflare_tunnel=False,
            data_dir=tmp_path,
            environ={"POSTFLOW_CONFIG_DIR": str(tmp_path / "config")},
        )
        with caplog.at_level(logging.ERROR):
            assert manager.start_webhook_server() is False
    assert f"port {port}" in (manager.last_error or "")
    assert "--port" in caplog.text


def test_a_public_tunnel_without_a_secret_is_refused(tmp_path: Path) -> None:
    """Asking for a tunnel with no signing secret fails with an explanation."""
    manager = FrameIOWebhookManager(
        webhook_port=free_port(),
        use_cloudflare_tunnel=True,
        data_dir=tmp_path,
        environ={"POSTFLOW_CONFIG_DIR": str(tmp_path / "config")},
    )
    assert manager.start_webhook_server() is False
    assert "secret" in (manager.last_error or "").lower()


def test_the_package_exports_the_factory_and_the_facade() -> None:
    """``from postflow_webhooks import FrameIOWebhookManager, create_app`` works."""
    assert callable(create_app) and FrameIOWebhookManager.__name__ == "FrameIOWebhookManager"
