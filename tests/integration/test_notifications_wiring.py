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


def comment(url: str, comment_id: str, file_id: str, text: str) -> int:
    """An unsigned PostFlow-dialect comment.created delivery."""
    resource = {"id": comment_id, "type": "comment", "file_id": file_id, "text": text}
    body = {"event_type": "comment.created", "resource": {**resource, "author": "Ana"}}
    return httpx.post(f"{url}/frameio-webhook", content=json.dumps(body).encode()).status_code


def notifications(url: str) -> dict[str, Any]:
    """The ``notifications`` part of ``/webhook-status``, with the delivery backlog."""
    status = httpx.get(f"{url}/webhook-status").json()
    return dict(status["notifications"], backlog=status["backlog"])


def settled(url: str, file_id: str, status: str) -> bool:
    """True once ``file_id`` shows ``status`` and nothing is left to apply or to send."""
    shown = httpx.get(f"{url}/uploads/{file_id}").json().get("status")
    figures = notifications(url)
    return bool(shown == status and figures["backlog"] == 0 and figures["pending"] == 0)


def shown(discord: FakeDiscord) -> list[tuple[str, str]]:
    """What the channel shows, in order: (title, description) per message."""
    return [(m["embeds"][0]["title"], m["embeds"][0]["description"]) for m in discord.messages]


S = PostflowStatus

LIFECYCLE: list[tuple[str, dict[str, str]]] = [
    ("file.created", {}),
    ("file.upload.completed", {}),
    ("file.upload.completed", {}),
    ("file.ready", {}),
    ("file.ready", {}),
    ("review.status.changed", {"review_status": "needs_review"}),
    ("review.status.changed", {"review_status": "approved"}),
    ("review.status.changed", {"review_status": "approved"}),
]


def test_every_status_change_reaches_discord_once_and_in_order(tmp_path: Path) -> None:
    """Two files through their lifecycle, deliveries repeated: each change shown once, in order."""
    with FakeDiscord(bucket_limit=50) as discord:
        settings = receiver_settings(tmp_path, discord_webhook_url=discord.webhook_url)
        with running_server(create_app(settings), settings.port) as url:
            for event, extra in LIFECYCLE:
                assert post(url, event, "a-1", **extra) == 202
                assert post(url, event, "b-2", **extra) == 202
            wait_for(lambda: settled(url, "a-1", "APPROVED") and settled(url, "b-2", "APPROVED"))
            figures = notifications(url)
    steps = [
        f"New file → {S.UPLOADING.value}",
        f"{S.UPLOADING.value} → {S.PROCESSING.value}",
        f"{S.PROCESSING.value} → {S.COMPLETED.value}",
        f"{S.COMPLETED.value} → {S.WAITING_APPROVAL.value}",
        f"{S.WAITING_APPROVAL.value} → {S.APPROVED.value}",
    ]
    assert shown(discord) == [(f"{f}.mov", step) for step in steps for f in ("a-1", "b-2")]
    assert (figures["sent"], figures["skipped"], figures["dead_letters"]) == (10, 0, 0)


def test_the_statuses_and_comments_settings_decide_what_is_queued(tmp_path: Path) -> None:
    """Only the configured statuses (and comments, when on) are queued; the rest count as skipped."""
    with FakeDiscord(bucket_limit=50) as discord:
        settings = receiver_settings(
            tmp_path,
            discord_webhook_url=discord.webhook_url,
            discord_statuses=(S.APPROVED, S.REJECTED),
            discord_comments=True,
        )
        with running_server(create_app(settings), settings.port) as url:
            for event, extra in LIFECYCLE:
                assert post(url, event, "c-1", **extra) == 202
            assert comment(url, "k-1", "c-1", "Lovely grade") == 202
            wait_for(lambda: settled(url, "c-1", "APPROVED") and len(discord.messages) == 2)
            figures = notifications(url)
    assert shown(discord) == [
        ("c-1.mov", f"{S.WAITING_APPROVAL.value} → {S.APPROVED.value}"),
        ("💬 New comment · c-1.mov", "Lovely grade"),
    ]
    assert (figures["sent"], figures["skipped"], figures["pending"]) == (2, 4, 0)


def test_comments_are_not_announced_unless_asked(tmp_path: Path) -> None:
    """By default comments are counted as skipped and never reach Discord."""
    with FakeDiscord(bucket_limit=50) as discord:
        settings = receiver_settings(tmp_path, discord_webhook_url=discord.webhook_url)
        with running_server(create_app(settings), settings.port) as url:
            assert post(url, "file.created", "m-1") == 202
            assert comment(url, "k-2", "m-1", "Too dark") == 202
            wait_for(lambda: notifications(url)["skipped"] == 1)
            wait_for(lambda: settled(url, "m-1", "UPLOADING"))
            figures = notifications(url)
    assert shown(discord) == [("m-1.mov", f"New file → {S.UPLOADING.value}")]
    assert (figures["sent"], figures["skipped"]) == (1, 1)


def test_without_a_discord_url_nothing_is_queued(tmp_path: Path) -> None:
    """No Discord URL: changes are applied and counted as skipped; the outbox stays empty."""
    settings = receiver_settings(tmp_path)
    with running_server(create_app(settings), settings.port) as url:
        for event, extra in LIFECYCLE:
            assert post(url, event, "q-1", **extra) == 202
        wait_for(lambda: settled(url, "q-1", "APPROVED"))
        figures = notifications(url)
        health = httpx.get(f"{url}/health").json()
    assert figures["enabled"] is False and figures["destination"] == "disabled"
    assert (figures["pending"], figures["dead_letters"], figures["skipped"]) == (0, 0, 5)
    assert health["status"] == "ok"


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

    @property
    def key(self) -> str:
        """The destination's key for its saved state."""
        return "recording:1"

    @property
    def label(self) -> str:
        """How the destination is shown."""
        return "recording notifier"

    def ready_in(self) -> float:
        """Always ready."""
        return 0.0

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
