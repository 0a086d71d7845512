"""The fake cloudflared itself stays faithful to cloudflared.md: endpoints, flags, signals."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.fakes.cloudflared_helpers import FAKE_CLOUDFLARED, free_port, make_token, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(60)]
LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ (DBG|INF|WRN|ERR|FTL) ")


def _spawn(tmp_path: Path, *args: str, **env: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    argv = [str(FAKE_CLOUDFLARED), "tunnel", "--no-autoupdate", "--metrics", f"127.0.0.1:{port}"]
    argv += ["--loglevel", "info", "--protocol", "http2", "--grace-period", "1s", *args]
    full_env = {**os.environ, "FAKE_CLOUDFLARED_STATE_DIR": str(tmp_path), **env}
    proc = subprocess.Popen(argv, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, env=full_env)
    return proc, port


def _ready(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def test_metrics_endpoints_answer_without_content_type(tmp_path: Path) -> None:
    """/quicktunnel, /ready, /healthcheck and /metrics answer as cloudflared's do, no Content-Type."""
    proc, port = _spawn(tmp_path, "--url", "http://127.0.0.1:9")
    try:
        wait_until(lambda: _ready(port))
        base = f"http://127.0.0.1:{port}"
        quick = httpx.get(f"{base}/quicktunnel")
        ready = httpx.get(f"{base}/ready")
        assert "content-type" not in quick.headers and "content-type" not in ready.headers
        assert json.loads(quick.content)["hostname"].endswith(".trycloudflare.com")
        assert json.loads(ready.content)["readyConnections"] == 1
        assert httpx.get(f"{base}/healthcheck").text.strip() == "OK"
        assert "cloudflared_tunnel_ha_connections 1" in httpx.get(f"{base}/metrics").text
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0
    lines = err.decode().splitlines()
    assert all(LINE.match(line) for line in lines)
    assert any("Initiating graceful shutdown due to signal terminated ..." in x for x in lines)


def test_a_second_signal_exits_at_once(tmp_path: Path) -> None:
    """a second SIGTERM ends the fake immediately, even when it ignores the first."""
    proc, port = _spawn(
        tmp_path, "--url", "http://127.0.0.1:9", FAKE_CLOUDFLARED_SCENARIO="stubborn"
    )
    try:
        wait_until(lambda: _ready(port))
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        assert proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=5)
    finally:
        proc.kill()
        proc.communicate()


def test_usage_errors_and_bad_tokens_exit_255(tmp_path: Path) -> None:
    """an unknown flag or an invalid token ends with exit 255 and cloudflared's message."""
    proc, _ = _spawn(tmp_path, "--bogus")
    _, err = proc.communicate(timeout=10)
    assert proc.returncode == 255 and b"flag provided but not defined: --bogus" in err
    proc, _ = _spawn(tmp_path, "run", TUNNEL_TOKEN="not-a-token")
    _, err = proc.communicate(timeout=10)
    assert proc.returncode == 255 and err.decode().splitlines()[-1] == (
        "Provided Tunnel token is not valid."
    )
    proc, port = _spawn(tmp_path, "run", TUNNEL_TOKEN=make_token())
    try:
        wait_until(lambda: _ready(port))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=10)
    assert proc.returncode == 0


def test_the_banner_box_has_cloudflared_geometry(tmp_path: Path) -> None:
    """the box is +, 92 dashes, +; rows are |, two spaces, 88 chars, two spaces, |."""
    proc, port = _spawn(tmp_path, "--url", "http://127.0.0.1:9")
    try:
        wait_until(lambda: _ready(port))
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
    box = [
        line.split(" INF ", 1)[1]
        for line in err.decode().splitlines()
        if " INF +" in line or " INF |" in line
    ]
    assert box[0] == box[3] == "+" + "-" * 92 + "+"
    assert all(len(row) == 94 and row.startswith("|  ") and row.endswith("  |") for row in box[1:3])
