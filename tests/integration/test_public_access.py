"""Through the tunnel only the webhook and a bare /health answer; locally, everything."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from postflow_webhooks.adapters.cloudflared import CloudflaredTunnel, restart_retrying
from postflow_webhooks.app.composition import create_app
from tests.fakes.cloudflared_helpers import Waits, fake_config, public_port
from tests.support import receiver_settings, running_server

pytestmark = [pytest.mark.anyio, pytest.mark.slow, pytest.mark.timeout(60)]


async def test_the_tunnel_exposes_only_the_webhook_and_a_bare_health(tmp_path: Path) -> None:
    """Via the fake cloudflared: /uploads and /webhook-status are 404, /health says only ok."""
    settings = receiver_settings(tmp_path / "data", webhook_secret="s")
    with running_server(create_app(settings), settings.port) as local:
        config = fake_config(tmp_path, local_port=settings.port)
        tunnel = CloudflaredTunnel(config, retrying=restart_retrying(config.restart, sleep=Waits()))
        await tunnel.start()
        try:
            url = tunnel.info().public_url
            assert url is not None
            async with httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{public_port(tmp_path, url)}"
            ) as public:
                uploads = await public.get("/uploads")
                status = await public.get("/webhook-status")
                health = await public.get("/health")
                described = await public.get("/frameio-webhook")
                unsigned = await public.post("/frameio-webhook", content=b"{}")
        finally:
            await tunnel.stop()
        async with httpx.AsyncClient(base_url=local) as inside:
            local_uploads = await inside.get("/uploads")
            local_health = await inside.get("/health")
    assert uploads.status_code == 404 and status.status_code == 404
    assert health.status_code == 200 and health.json() == {"status": "ok"}
    assert described.status_code == 200
    assert unsigned.status_code == 401
    assert local_uploads.status_code == 200
    assert "backlog" in local_health.json()


def test_public_status_with_its_token_opens_the_status_pages(tmp_path: Path) -> None:
    """With public_status on, a tunnelled request showing the token sees the status pages."""
    edge = {"Cf-Ray": "8a1b2c3d4e5f6a7b-FRA", "Cf-Connecting-Ip": "203.0.113.9"}
    closed = receiver_settings(tmp_path / "closed")
    opened = receiver_settings(tmp_path / "open", public_status=True, status_token="t0ken")
    with running_server(create_app(closed), closed.port) as url:
        assert httpx.get(f"{url}/uploads", headers=edge).status_code == 404
    with running_server(create_app(opened), opened.port) as url:
        shown = {**edge, "Authorization": "Bearer t0ken"}
        assert httpx.get(f"{url}/uploads", headers=edge).status_code == 401
        assert httpx.get(f"{url}/uploads", headers=shown).status_code == 200
        assert "backlog" in httpx.get(f"{url}/health", headers=shown).json()
        assert "backlog" not in httpx.get(f"{url}/health", headers=edge).json()
