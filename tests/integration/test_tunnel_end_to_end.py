"""A signed delivery through the fake cloudflared's public side reaches the real receiver."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from postflow_webhooks.adapters.cloudflared import CloudflaredTunnel, restart_retrying
from postflow_webhooks.app.composition import create_app
from tests.fakes.cloudflared_helpers import Waits, fake_config, public_port
from tests.support import receiver_settings, running_server, signed_headers

pytestmark = [pytest.mark.anyio, pytest.mark.slow, pytest.mark.timeout(60)]

SECRET = "tunnel-e2e-secret"


async def test_signed_delivery_through_the_tunnel_lands_in_the_receiver(tmp_path: Path) -> None:
    """a signed V4 delivery sent to the public URL is forwarded byte for byte and accepted."""
    settings = receiver_settings(tmp_path / "data", webhook_secret=SECRET)
    app = create_app(settings)
    body = json.dumps(
        {
            "account": {"id": "acc-1"},
            "project": {"id": "proj-1"},
            "resource": {"id": "file-e2e", "type": "file"},
            "type": "file.ready",
            "user": {"id": "user-1"},
            "workspace": {"id": "ws-1"},
        },
        separators=(",", ":"),
    ).encode()
    with running_server(app, settings.port):
        config = fake_config(tmp_path, local_port=settings.port)
        tunnel = CloudflaredTunnel(config, retrying=restart_retrying(config.restart, sleep=Waits()))
        await tunnel.start()
        try:
            url = tunnel.info().public_url
            assert url is not None
            port = public_port(tmp_path, url)
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
                accepted = await client.post(
                    "/frameio-webhook", content=body, headers=signed_headers(SECRET, body)
                )
                forged = await client.post(
                    "/frameio-webhook", content=body, headers=signed_headers("wrong", body)
                )
                health = await client.get("/health")
        finally:
            await tunnel.stop()
    assert accepted.status_code == 202, accepted.text
    assert accepted.json()["event_type"] == "file.ready"
    assert forged.status_code == 401
    assert health.status_code == 200
