"""No cloudflared outlives its parent: Ctrl-C stops it cleanly, a killed parent takes it along."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fakes.cloudflared_helpers import fake_config, process_gone, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(60)]

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = """
import asyncio, json, pickle, sys
from postflow_webhooks.adapters.cloudflared import CloudflaredTunnel

async def main():
    config = pickle.loads(bytes.fromhex(sys.argv[1]))
    tunnel = CloudflaredTunnel(config)
    try:
        await tunnel.start()
        print(json.dumps({"pid": tunnel.pid}), flush=True)
        await asyncio.Event().wait()
    finally:
        await tunnel.stop()
        print(json.dumps({"stopped": True}), flush=True)

asyncio.run(main())
"""


def _run_parent(tmp_path: Path) -> tuple[subprocess.Popen[str], int]:
    import pickle

    config = fake_config(tmp_path, grace_period=1.0, kill_margin=0.5)
    parent = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, pickle.dumps(config).hex()],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )
    assert parent.stdout is not None
    line = parent.stdout.readline()
    pid = int(json.loads(line)["pid"])
    return parent, pid


def test_ctrl_c_on_the_parent_stops_cloudflared_gracefully(tmp_path: Path) -> None:
    """SIGINT to the parent runs tunnel.stop(): cloudflared shuts down and is reaped."""
    parent, pid = _run_parent(tmp_path)
    try:
        parent.send_signal(signal.SIGINT)
        out, _ = parent.communicate(timeout=20)
        assert '"stopped": true' in out
        wait_until(lambda: process_gone(pid))
        log = (tmp_path / "logs" / "webhook_tunnel.log").read_text()
        assert "Initiating graceful shutdown due to signal terminated" in log
    finally:
        parent.kill()
        parent.wait()


def test_a_killed_parent_takes_cloudflared_along(tmp_path: Path) -> None:
    """SIGKILL on the parent (no cleanup at all) still ends cloudflared (Linux PDEATHSIG)."""
    if not sys.platform.startswith("linux"):
        pytest.skip("parent-death signal is Linux only")
    parent, pid = _run_parent(tmp_path)
    try:
        parent.kill()
        parent.wait(timeout=10)
        wait_until(lambda: process_gone(pid), timeout=15)
    finally:
        parent.kill()
        parent.wait()
