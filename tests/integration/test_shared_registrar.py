"""The registrar and worker roles with a shared store: one holder each, and a takeover.

Only the registrar holder points Frame.io's webhook, once; only the worker
holder reconciles.

Two receivers in this process share one PostgreSQL database, each with the
fake cloudflared running the same named tunnel, both signed in to the fake
Frame.io. The webhook was registered once beforehand (its secret copied to
both data directories). The registrar's status is shared through the
database: both receivers' ``/webhook-status`` show the same ``frameio_webhook``.
"""

from __future__ import annotations

import shutil
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from postflow_webhooks.app.composition import create_app
from postflow_webhooks.app.settings import Settings
from tests.fakes.cloudflared_helpers import FAKE_CLOUDFLARED, make_token
from tests.fakes.fake_frameio import FakeFrameio
from tests.integration.test_frameio_end_to_end import eventually, frameio_settings, register_locally
from tests.postgres import scratch_database
from tests.support import running_server

pytestmark = [pytest.mark.anyio, pytest.mark.slow, pytest.mark.timeout(90)]

HOSTNAME = "hooks.example.com"
HOOK_URL = f"https://{HOSTNAME}/frameio-webhook"


def receiver(fake: FakeFrameio, tmp_path: Path, name: str, url: str, token: str) -> Settings:
    """A receiver on the shared database, behind the named tunnel, signed in to the fake."""
    return frameio_settings(
        fake,
        tmp_path / name,
        store="postgres",
        database_url=url,
        tunnel="named",
        tunnel_token=token,
        tunnel_hostname=HOSTNAME,
        cloudflared=str(FAKE_CLOUDFLARED),
        log_dir=tmp_path / name / "logs",
        reconcile_interval=0.2,
    )


def status(settings: Settings) -> dict[str, Any]:
    """One receiver's /webhook-status."""
    return dict(httpx.get(f"{settings.local_url}/webhook-status", timeout=5).json())


def role(settings: Settings, name: str = "registrar") -> str:
    """``held`` or ``standby``: this receiver's role ``name``."""
    roles = httpx.get(f"{settings.local_url}/health", timeout=5).json()["roles"]
    return str(roles[name])


def reconciled(settings: Settings) -> int:
    """How many reconciliation passes this receiver has run."""
    health = httpx.get(f"{settings.local_url}/health", timeout=5).json()
    return int(health["reconciliation"]["passes"])


async def test_only_the_registrar_holder_points_the_webhook_and_a_standby_takes_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One PATCH from the holder, none from the standby, the same status on both; then one more."""
    monkeypatch.setenv("FAKE_CLOUDFLARED_STATE_DIR", str(tmp_path / "fake"))
    monkeypatch.setenv("FAKE_CLOUDFLARED_NAMED_HOSTNAME", HOSTNAME)
    token = make_token()
    with scratch_database() as url, FakeFrameio() as fake, ExitStack() as stack:
        file_id = fake.add_file("shared.mov", status="transcoded")
        first = receiver(fake, tmp_path, "first", url, token)
        second = receiver(fake, tmp_path, "second", url, token)
        await register_locally(first)
        second.data_dir.mkdir(parents=True)
        secret = "frameio_webhook_secret"
        shutil.copy(first.data_dir / secret, second.data_dir / secret)
        assert [h["url"] for h in fake.webhooks.values()] == [f"{first.local_url}/frameio-webhook"]

        servers = {}
        for settings in (first, second):
            servers[settings.port] = stack.enter_context(ExitStack())
            servers[settings.port].enter_context(
                running_server(create_app(settings), settings.port)
            )
        await eventually(lambda: [h["url"] for h in fake.webhooks.values()] == [HOOK_URL])
        holder, standby = sorted((first, second), key=lambda s: role(s) != "held")
        assert (role(holder), role(standby)) == ("held", "standby")
        # Reconciliation goes with the worker role, which the first receiver up took too.
        assert (role(holder, "worker"), role(standby, "worker")) == ("held", "standby")
        await eventually(lambda: reconciled(holder) >= 3)
        assert reconciled(standby) == 0, "only the worker-role holder reconciles"
        await eventually(lambda: status(holder)["frameio_webhook"]["pending"] is False)
        assert status(holder)["frameio_webhook"]["registered_url"] == HOOK_URL
        shown = status(holder)["frameio_webhook"]
        assert shown["updates"] == 1 and shown["webhook_id"]
        # The standby shows the holder's status, read from the shared database.
        await eventually(lambda: status(standby)["frameio_webhook"] == shown, timeout=5)
        assert len(fake.calls("PATCH", "/webhooks/")) == 1, "only the holder points the webhook"

        servers[holder.port].close()  # the holder stops; the standby takes the role
        await eventually(lambda: role(standby) == "held")
        await eventually(lambda: reconciled(standby) >= 1)  # and it reconciles now
        # The new holder carries on from the shared status: its update is the second.
        await eventually(lambda: status(standby)["frameio_webhook"]["updates"] == 2)
        assert status(standby)["frameio_webhook"]["registered_url"] == HOOK_URL
        assert len(fake.calls("PATCH", "/webhooks/")) == 2
        assert len(fake.webhooks) == 1, "a shared store never creates a second webhook"

        def through_tunnel(hook: str) -> str:
            """The edge sends the named hostname's requests to the receiver still up."""
            return hook.replace(f"https://{HOSTNAME}", standby.local_url)

        answer = await fake.deliver("file.ready", file_id, resolve=through_tunnel)
        assert answer is not None and answer.status_code == 202, answer.text
        await eventually(
            lambda: status(standby)["backlog"] == 0 and status(standby)["total_events"]
        )
