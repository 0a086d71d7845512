"""``make run`` starts the receiver on its embedded default, exactly as the README says."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.support import free_port, wait_for

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def test_make_run_answers_health_on_the_embedded_default(tmp_path: Path) -> None:
    """``make run`` serves /health with SQLite under the data dir, no tunnel, no Discord."""
    port = free_port()
    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("POSTFLOW_")}
    env["POSTFLOW_CONFIG_DIR"] = str(tmp_path / "config")
    process = subprocess.Popen(
        ["make", "-C", str(ROOT), "run", f"PORT={port}", f"DATA={data}"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}/health"

    def answers() -> bool:
        try:
            return httpx.get(url, timeout=1).status_code == 200
        except httpx.HTTPError:
            return process.poll() is not None

    try:
        wait_for(answers, timeout=120, every=0.2)
        health = httpx.get(url).json()
        assert health["status"] == "ok"
        assert health["store"]["database"] == str(data / "postflow.sqlite3")
        assert health["store"]["tracker"] is None
        assert health["tunnel_info"]["mode"] == "off"
        assert health["notifications"]["destination"] == "disabled"
        assert (data / "postflow.sqlite3").exists()
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
