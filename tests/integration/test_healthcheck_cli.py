"""``healthcheck`` exits 0/1/2 for Docker and systemd; ``doctor`` checks the Frame.io setup."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import pytest

from postflow_webhooks.adapters.sqlite import DATABASE_NAME
from postflow_webhooks.app.composition import create_app
from postflow_webhooks.domain.ports import TunnelInfo
from tests.fakes.fake_frameio import FakeFrameio
from tests.support import (
    POSTFLOW_COMMAND,
    command_env,
    free_port,
    receiver_settings,
    running_server,
    wait_for,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``postflow-webhooks ARGS`` in a subprocess."""
    return subprocess.run(
        [POSTFLOW_COMMAND, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


class DownTunnel:
    """A tunnel that never became ready."""

    async def start(self) -> None:
        """Nothing starts."""

    async def stop(self) -> None:
        """Nothing to stop."""

    def info(self) -> TunnelInfo:
        """Failed, with the reason."""
        return TunnelInfo(mode="quick", state="failed", last_error="edge unreachable")

    def subscribe(self, listener: Any) -> None:
        """No URL will ever come."""


def test_healthcheck_exits_0_1_2_for_healthy_degraded_and_unhealthy(tmp_path: Path) -> None:
    """ok: 0; a quarantined delivery (degraded): 1; a tunnel down past its threshold: 2."""
    env = command_env(tmp_path / "config")
    healthy = receiver_settings(tmp_path / "healthy")
    with running_server(create_app(healthy), healthy.port) as url:
        ok = cli(env, "healthcheck", "--url", url)
        db = sqlite3.connect(healthy.data_dir / DATABASE_NAME, isolation_level=None)
        db.execute(
            "INSERT INTO deliveries (delivery_id, received_at, event_type, body, state) "
            "VALUES ('bad', 0, 'file.ready', x'7b', 'quarantined')"
        )
        db.close()
        degraded = cli(env, "healthcheck", "--url", url)
        quiet = cli(env, "healthcheck", "--url", url, "--quiet")
    down = receiver_settings(tmp_path / "down", webhook_secret="s", tunnel_down_threshold=0.2)
    with running_server(create_app(down, tunnel=DownTunnel()), down.port) as url:
        wait_for(lambda: cli(env, "healthcheck", "--url", url).returncode == 2, timeout=20)
        unhealthy = cli(env, "healthcheck", "--url", url)
        as_json = cli(env, "healthcheck", "--url", url, "--json")
    assert (ok.returncode, ok.stdout.strip()) == (0, "ok")
    assert degraded.returncode == 1 and degraded.stdout.startswith("degraded: quarantine: 1")
    assert quiet.returncode == 1 and quiet.stdout == ""
    assert unhealthy.returncode == 2 and unhealthy.stdout.startswith("unhealthy: tunnel: failed")
    assert as_json.returncode == 2 and json.loads(as_json.stdout)["status"] == "unhealthy"


def test_healthcheck_exits_2_when_nothing_answers(tmp_path: Path) -> None:
    """No receiver on the port: 2, saying so."""
    port = free_port()
    done = cli(command_env(tmp_path / "config", POSTFLOW_PORT=str(port)), "healthcheck")
    assert done.returncode == 2
    assert f"no receiver answers at http://127.0.0.1:{port}" in done.stdout


def frameio_env(tmp_path: Path, fake: FakeFrameio, **changes: str) -> dict[str, str]:
    """An environment whose Frame.io settings point at the fake."""
    values = {
        "POSTFLOW_DATA_DIR": str(tmp_path / "data"),
        "POSTFLOW_PORT": str(free_port()),
        "POSTFLOW_WEBHOOK_SECRET": "s",
        "POSTFLOW_FRAMEIO_CLIENT_ID": fake.client_id,
        "POSTFLOW_FRAMEIO_CLIENT_SECRET": fake.client_secret,
        "POSTFLOW_FRAMEIO_ACCOUNT_ID": fake.account_id,
        "POSTFLOW_FRAMEIO_WORKSPACE_ID": fake.workspace_id,
        "POSTFLOW_FRAMEIO_API_BASE": fake.url,
        "POSTFLOW_FRAMEIO_IMS_TOKEN_URL": f"{fake.url}/ims/token/v3",
    }
    values.update(changes)
    return command_env(tmp_path / "config", **values)


def frameio_line(env: dict[str, str]) -> tuple[int, dict[str, Any]]:
    """``doctor --json``'s exit status and its Frame.io check."""
    done = cli(env, "doctor", "--json")
    checks = {c["check"]: c for c in json.loads(done.stdout)}
    return done.returncode, checks["frameio"]


def test_doctor_checks_sign_in_account_and_workspace_against_frameio(tmp_path: Path) -> None:
    """Good credentials: ok. Refused secret, unknown workspace: each a fix naming the setting."""
    with FakeFrameio() as fake:
        good = frameio_line(frameio_env(tmp_path / "good", fake))
        refused = frameio_line(
            frameio_env(tmp_path / "refused", fake, POSTFLOW_FRAMEIO_CLIENT_SECRET="wrong")
        )
        lost = frameio_line(
            frameio_env(tmp_path / "lost", fake, POSTFLOW_FRAMEIO_WORKSPACE_ID="ws-nope")
        )
    assert good[0] == 0 and good[1]["ok"]
    assert (
        "signed in (server)" in good[1]["detail"] and "workspace ws-0001 found" in good[1]["detail"]
    )
    assert refused[0] == 1 and not refused[1]["ok"]
    assert "invalid_client" in refused[1]["detail"] and "client_secret" in refused[1]["detail"]
    assert "wrong" not in refused[1]["detail"]
    assert lost[0] == 1 and not lost[1]["ok"]
    assert "workspace ws-nope" in lost[1]["detail"] and "workspace_id" in lost[1]["detail"]


def test_doctor_spots_the_guides_placeholder_configuration(tmp_path: Path) -> None:
    """The guide's config/frameio_config.json as shipped: a fix naming the file, no network call."""
    config = tmp_path / "config"
    config.mkdir()
    (config / "frameio_config.json").write_text(
        json.dumps(
            {
                "client_id": "votre_client_id",
                "client_secret": "votre_client_secret",
                "redirect_uri": "http://localhost:3000/callback",
                "account_id": "votre_account_id",
                "workspace_id": "votre_workspace_id",
            }
        )
    )
    env = command_env(config, POSTFLOW_DATA_DIR=str(tmp_path / "data"))
    code, line = frameio_line(env)
    assert code == 1 and not line["ok"]
    assert "client_id, client_secret, account_id, workspace_id" in line["detail"]
    assert str(config / "frameio_config.json") in line["detail"]


def test_doctor_without_frameio_credentials_says_what_is_left_out(tmp_path: Path) -> None:
    """No API configured: an ok line explaining what V4 deliveries then lack."""
    _, line = frameio_line(command_env(tmp_path / "config"))
    assert line["ok"] and "API not configured" in line["detail"]
