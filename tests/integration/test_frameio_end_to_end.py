"""Frame.io end to end: real receiver, fake Frame.io, fake Discord, fake cloudflared."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from postflow_webhooks.adapters.frameio import FrameioAdapter
from postflow_webhooks.app.composition import create_app, frameio_config
from postflow_webhooks.app.settings import Settings
from tests.fakes.cloudflared_helpers import FAKE_CLOUDFLARED, public_port
from tests.fakes.fake_discord import FakeDiscord
from tests.fakes.fake_frameio import FakeFrameio
from tests.support import receiver_settings, running_server

pytestmark = [pytest.mark.anyio, pytest.mark.slow, pytest.mark.timeout(90)]


def frameio_settings(fake: FakeFrameio, tmp_path: Path, **extra: Any) -> Settings:
    """Receiver settings whose Frame.io API is the fake."""
    return receiver_settings(
        tmp_path / "data",
        **fake.receiver_settings(),
        **extra,
    )


async def register_locally(settings: Settings) -> None:
    """Create our webhook in the fake, pointing at the local receiver; stores its secret."""
    config = frameio_config(settings)
    assert config is not None
    adapter = FrameioAdapter(config)
    try:
        await adapter.webhooks.register(settings.local_url)
    finally:
        await adapter.aclose()


async def eventually(check: Callable[[], Any], timeout: float = 20.0) -> Any:
    """Poll ``check`` (sync) until it returns something truthy."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


def upload(settings: Settings, file_id: str) -> dict[str, Any]:
    """GET /uploads/{file_id} (empty dict when unknown)."""
    answer = httpx.get(f"{settings.local_url}/uploads/{file_id}")
    return answer.json() if answer.status_code == 200 else {}


async def test_a_review_decision_in_frameio_reaches_the_tracker_and_discord(tmp_path: Path) -> None:
    """Status field set to Approved + metadata.value.updated: tracker APPROVED, Discord told."""
    with FakeFrameio() as fake, FakeDiscord(bucket_limit=50) as discord:
        file_id = fake.add_file("hero_shot_v3.mov", status="transcoded")
        settings = frameio_settings(fake, tmp_path, discord_webhook_url=discord.webhook_url)
        await register_locally(settings)
        with running_server(create_app(settings), settings.port):
            ready = await fake.deliver("file.ready", file_id)
            assert ready is not None and ready.status_code == 202, ready
            await eventually(lambda: upload(settings, file_id).get("status") == "COMPLETED")
            fake.set_status_field(file_id, "Approved")
            decided = await fake.deliver("metadata.value.updated", file_id)
            assert decided is not None and decided.status_code == 202
            record = await eventually(
                lambda: (u := upload(settings, file_id)).get("status") == "APPROVED" and u
            )
            await eventually(lambda: len(discord.messages) >= 2)
    assert record["name"] == "hero_shot_v3.mov"
    assert [h["new_status"] for h in record["history"]] == ["COMPLETED 🎉", "APPROVED ✅"]
    texts = [json.dumps(m, ensure_ascii=False) for m in discord.messages]
    assert "hero_shot_v3.mov" in texts[-1] and "APPROVED ✅" in texts[-1]


async def test_an_enrichment_outage_delays_but_loses_nothing(tmp_path: Path) -> None:
    """Frame.io answering 503: the delivery waits (shown as pending), then applies once it recovers."""
    with FakeFrameio() as fake:
        file_id = fake.add_file("outage.mov", status="transcoded")
        settings = frameio_settings(fake, tmp_path)
        await register_locally(settings)
        with running_server(create_app(settings), settings.port):
            fake.fail_next(1000, 503)
            answer = await fake.deliver("file.ready", file_id)
            assert answer is not None and answer.status_code == 202
            pending = await eventually(
                lambda: httpx.get(f"{settings.local_url}/uploads").json()["pending_enrichment"]
            )
            assert pending[0]["file_id"] == file_id and pending[0]["attempts"] >= 1
            assert upload(settings, file_id)["tracked"] is False
            fake.recover()
            record = await eventually(
                lambda: (u := upload(settings, file_id)).get("status") == "COMPLETED" and u,
                timeout=30,
            )
            assert record["name"] == "outage.mov" and record["pending_enrichment"] == []
            status = httpx.get(f"{settings.local_url}/webhook-status").json()
            assert status["backlog"] == 0 and status["quarantined"] == 0


async def test_reconciliation_repairs_a_change_whose_delivery_was_never_sent(
    tmp_path: Path,
) -> None:
    """A review decision Frame.io never delivered is found and applied by reconciliation."""
    with FakeFrameio() as fake:
        file_id = fake.add_file("missed.mov", status="transcoded")
        settings = frameio_settings(fake, tmp_path, reconcile_interval=0.5)
        await register_locally(settings)
        with running_server(create_app(settings), settings.port):
            await fake.deliver("file.ready", file_id)
            await eventually(lambda: upload(settings, file_id).get("status") == "COMPLETED")
            fake.set_status_field(file_id, "Needs Review")
            record = await eventually(
                lambda: (u := upload(settings, file_id)).get("status") == "WAITING_APPROVAL" and u
            )
    assert record["history"][-1]["event_type"] == "postflow.reconciled"


async def test_a_tunnel_restart_moves_the_frameio_webhook_and_deliveries_follow(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """cloudflared restarts with a new URL; our Frame.io webhook follows; deliveries land."""
    monkeypatch.setenv("FAKE_CLOUDFLARED_STATE_DIR", str(tmp_path / "fake"))
    monkeypatch.setenv("FAKE_CLOUDFLARED_SCENARIO_1", "crash_after")
    monkeypatch.setenv("FAKE_CLOUDFLARED_CRASH_AFTER", "3")
    with FakeFrameio() as fake:
        file_id = fake.add_file("moving.mov", status="transcoded")
        settings = frameio_settings(
            fake,
            tmp_path,
            tunnel="quick",
            cloudflared=str(FAKE_CLOUDFLARED),
            log_dir=tmp_path / "logs",
            allow_insecure_public=True,
        )
        app = create_app(settings)
        runtime = app.state.runtime

        def resolve(url: str) -> str:
            """The fake tunnel's local port for a public URL (what DNS would do)."""
            base = url.removesuffix("/frameio-webhook")
            return f"http://127.0.0.1:{public_port(tmp_path, base)}/frameio-webhook"

        def hooks() -> list[dict[str, Any]]:
            return list(fake.webhooks.values())

        with running_server(app, settings.port):
            first = await eventually(lambda: runtime.tunnel.info().public_url)
            await eventually(lambda: hooks() and hooks()[0]["url"].startswith(first))
            second = await eventually(
                lambda: (u := runtime.tunnel.info().public_url) != first and u, timeout=40
            )
            await eventually(lambda: hooks()[0]["url"].startswith(second), timeout=40)
            answer = await fake.deliver("file.ready", file_id, resolve=resolve)
            assert answer is not None and answer.status_code == 202, answer.text
            await eventually(lambda: upload(settings, file_id).get("status") == "COMPLETED")
            status = httpx.get(f"{settings.local_url}/webhook-status").json()
    assert len(hooks()) == 1 and hooks()[0]["url"] == f"{second}/frameio-webhook"
    assert status["frameio_webhook"]["registered_url"] == f"{second}/frameio-webhook"
    assert status["tunnel_info"]["restarts"] >= 1
    assert status["signature_verification"] == "on"
