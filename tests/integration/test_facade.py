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
    """A small stand-in for PostFlow's ``UploadTracker``: its methods, every call recorded.

    Like PostFlow's, ``update_upload`` merges into an existing entry only (a dotted
    key such as ``"frameio_data.file_id"`` sets a nested field), and the status
    helpers store PostFlow's own status values, emoji first.
    """

    def __init__(self) -> None:
        self.tracking_data: dict[str, Any] = {
            "version": "1.0",
            "uploads": {"up-1": {"filename": "shot_010.mov", "status": "🔄 UPLOADING", "size": 42}},
        }
        self.calls: list[tuple[str, str]] = []

    def get_upload(self, upload_id: str) -> dict[str, Any] | None:
        """One entry, or None."""
        entry = self.tracking_data["uploads"].get(upload_id)
        return entry if isinstance(entry, dict) else None

    def update_upload(self, upload_id: str, updates: dict[str, Any]) -> bool:
        """Merge fields into an existing entry; False when there is none."""
        self.calls.append(("update_upload", upload_id))
        return self._update(upload_id, updates)

    def mark_processing(self, upload_id: str) -> bool:
        """PostFlow's PROCESSING."""
        self.calls.append(("mark_processing", upload_id))
        return self._update(upload_id, {"status": "⚙️ PROCESSING"})

    def mark_completed(self, upload_id: str, frameio_data: dict[str, Any] | None = None) -> bool:
        """PostFlow's COMPLETED, with what Frame.io said about the file."""
        self.calls.append(("mark_completed", upload_id))
        updates: dict[str, Any] = {"status": "🎉 COMPLETED"}
        if frameio_data is not None:
            updates["frameio_data"] = frameio_data
        return self._update(upload_id, updates)

    def update_status(self, upload_id: str, status: str) -> bool:
        """Any other status, as PostFlow's own value (emoji first)."""
        self.calls.append(("update_status", upload_id))
        return self._update(upload_id, {"status": status})

    def _update(self, upload_id: str, updates: dict[str, Any]) -> bool:
        entry = self.get_upload(upload_id)
        if entry is None:
            return False
        for key, value in updates.items():
            *parents, leaf = key.split(".")
            target = entry
            for parent in parents:
                if not isinstance(target.get(parent), dict):
                    target[parent] = {}
                target = target[parent]
            target[leaf] = value
        return True


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
        steps = [
            ("file.upload.completed", {"status": "processing"}, "⚙️ PROCESSING"),
            ("file.ready", {"view_url": "https://f.io/v"}, "🎉 COMPLETED"),
            ("review.status.changed", {"review_status": "approved"}, "✅ APPROVED"),
        ]
        for event, fields, shown in steps:
            assert deliver(url, {"event_type": event, "resource": {**file, **fields}}) == 202
            # One step at a time, so that each status reaches the tracker on its own.
            wait_for(
                lambda shown=shown: tracker.tracking_data["uploads"]["up-1"]["status"] == shown
            )
        stats = manager.get_webhook_stats()
    entry = tracker.tracking_data["uploads"]["up-1"]
    assert entry["size"] == 42 and entry["frameio_data"]["file_id"] == "fio-1"
    assert entry["frameio_data"]["view_url"] == "https://f.io/v"
    status_calls = [call for call in tracker.calls if call[0] != "update_upload"]
    assert status_calls == [
        ("mark_processing", "up-1"),
        ("mark_completed", "up-1"),
        ("update_status", "up-1"),
    ]
    assert list(tracker.tracking_data["uploads"]) == ["up-1"]
    for key in ("total_events", "events_by_type", "webhook_status", "tunnel_info", "last_event"):
        assert key in stats
    assert stats["total_events"] == 3
    assert stats["events_by_type"]["file.ready"] == 1
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{url}/health", timeout=1)


def test_files_postflow_already_linked_are_known_at_start(tmp_path: Path) -> None:
    """Entries PostFlow's tracker links to Frame.io files are adopted; their status is kept."""
    tracker = UploadTracker()
    tracker.tracking_data["uploads"]["up-0"] = {
        "filename": "shot_000.mov",
        "status": "✅ APPROVED",
        "frameio_data": {"file_id": "fio-0"},
    }
    manager = FrameIOWebhookManager(
        upload_tracker=tracker,
        webhook_port=free_port(),
        use_cloudflare_tunnel=False,
        data_dir=tmp_path,
        environ={"POSTFLOW_CONFIG_DIR": str(tmp_path / "config")},
    )
    with manager:
        assert manager.last_error is None
        known = httpx.get(f"{manager.local_url}/uploads/fio-0")
        unlinked = httpx.get(f"{manager.local_url}/uploads/up-1")
    assert known.status_code == 200
    assert known.json()["status"] == "APPROVED" and known.json()["name"] == "shot_000.mov"
    assert unlinked.status_code == 404
    assert tracker.calls == [], "adopting writes nothing back to PostFlow's tracker"


def test_a_second_manager_on_the_same_data_directory_is_refused(tmp_path: Path) -> None:
    """Two receivers never share a data directory: the second start fails, naming it."""
    environ = {"POSTFLOW_CONFIG_DIR": str(tmp_path / "config")}
    first = FrameIOWebhookManager(
        webhook_port=free_port(), use_cloudflare_tunnel=False, data_dir=tmp_path, environ=environ
    )
    second_port = free_port()
    second = FrameIOWebhookManager(
        webhook_port=second_port, use_cloudflare_tunnel=False, data_dir=tmp_path, environ=environ
    )
    with first:
        assert first.last_error is None
        assert second.start_webhook_server() is False
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{second_port}/health", timeout=1)
        assert httpx.get(f"{first.local_url}/health").status_code == 200
    assert f"is using the data directory {tmp_path}" in (second.last_error or "")


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
    assert "webhook_port=" in caplog.text and "--port" not in caplog.text


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
