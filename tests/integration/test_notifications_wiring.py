"""Discord notifications as the composition root wires them, on a real receiver."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from postflow_webhooks.app.composition import create_app
from postflow_webhooks.domain.ports import TunnelInfo
from postflow_webhooks.domain.records import Notification
from postflow_webhooks.domain.statuses import PostflowStatus
from tests.fakes.fake_discord import FakeDiscord
from tests.support import receiver_settings, running_server, wait_for


def post(url: str, event: str, file_id: str, **resource: str) -> int:
    """An unsigned PostFlow-dialect delivery (this receiver has no secret)."""
    body = {"event_type": event, "resource": {"id": file_id, "name": f"{file_id}.mov", **resource}}
    return httpx.post(f"{url}/frameio-webhook", content=json.dumps(body).encode()).status_code


def test_status_changes_reach_discord_and_refusals_show_in_status(tmp_path: Path) -> None:
    """Each change is announced once; a 400 becomes a visible dead letter; a 404 breaks the destination."""
    with FakeDiscord(bucket_limit=50) as discord:
        settings = receiver_settings(tmp_path, discord_webhook_url=discord.webhook_url)
        with running_server(create_app(settings), settings.port) as url:
            assert post(url, "file.upload.completed", "n-1", status="processing") == 202
            assert post(url, "file.upload.completed", "n-1", status="processing") == 202
            assert post(url, "file.ready", "n-1") == 202
            wait_for(lambda: len(discord.messages) == 2)
            discord.fail_next(400, message="Invalid Form Body")
            assert post(url, "review.status.changed", "n-1", review_status="needs_review") == 202
            wait_for(
                lambda: (
                    httpx.get(f"{url}/webhook-status").json()["notifications"]["dead_letters"] == 1
                )
            )
            status = httpx.get(f"{url}/webhook-status").json()
            letter = status["notifications"]["recent_dead_letters"][0]
            assert letter["file_id"] == "n-1" and "Invalid Form Body" in letter["reason"]
            discord.delete_webhook()
            assert post(url, "review.status.changed", "n-1", review_status="approved") == 202
            wait_for(lambda: httpx.get(f"{url}/health").json()["warnings"])
            health = httpx.get(f"{url}/health").json()
            after = httpx.get(f"{url}/webhook-status").json()["notifications"]
    assert health["status"] == "degraded" and "broken" in health["warnings"][0]
    assert after["destination"] == "broken" and after["pending"] == 1
    assert discord.token not in json.dumps(after) + json.dumps(health)
    labels = [json.dumps(m, ensure_ascii=False) for m in discord.messages]
    assert "PROCESSING ⚙️" in labels[0] and "COMPLETED 🎉" in labels[1]


class RecordingNotifier:
    """An in-memory notifier: keeps what it was asked to send."""

    def __init__(self) -> None:
        self.sent: list[Notification] = []

    async def send(self, notification: Notification) -> None:
        """Keep it."""
        self.sent.append(notification)


def test_an_injected_notifier_receives_the_changes_without_any_discord_url(tmp_path: Path) -> None:
    """create_app(notifier=...) swaps Discord out: the fake hears every status change."""
    notifier = RecordingNotifier()
    settings = receiver_settings(tmp_path)
    with running_server(create_app(settings, notifier=notifier), settings.port) as url:
        assert post(url, "file.upload.completed", "i-1", status="processing") == 202
        assert post(url, "file.ready", "i-1") == 202
        wait_for(lambda: len(notifier.sent) == 2)
    assert [n.new_status for n in notifier.sent] == [
        PostflowStatus.PROCESSING,
        PostflowStatus.COMPLETED,
    ]


class FailedTunnel:
    """A tunnel fake that has given up."""

    def __init__(self) -> None:
        self.listeners: list[Any] = []

    async def start(self) -> None:
        """Nothing to start."""

    async def stop(self) -> None:
        """Nothing to stop."""

    def info(self) -> TunnelInfo:
        """Failed, with the reason."""
        return TunnelInfo(mode="quick", state="failed", last_error="edge unreachable")

    def subscribe(self, listener: Any) -> None:
        """Keep the listener."""
        self.listeners.append(listener)


def test_a_failed_tunnel_is_a_health_warning(tmp_path: Path) -> None:
    """/health stays 200 (deliveries still land locally) but says the tunnel failed, and why."""
    settings = receiver_settings(tmp_path, webhook_secret="s")
    with running_server(create_app(settings, tunnel=FailedTunnel()), settings.port) as url:
        health = httpx.get(f"{url}/health")
    assert health.status_code == 200
    body = health.json()
    assert body["status"] == "degraded"
    assert any("tunnel: failed (edge unreachable)" in w for w in body["warnings"])
    assert body["tunnel_info"]["state"] == "failed"
