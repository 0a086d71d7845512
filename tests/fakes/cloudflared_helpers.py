"""Helpers for driving the fake cloudflared executable from tests."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from postflow_webhooks.adapters.cloudflared import CloudflaredConfig, RestartPolicy

FAKE_CLOUDFLARED = Path(__file__).with_name("fake_cloudflared")
FAST_RESTARTS = RestartPolicy(
    initial=0.1, maximum=2.0, multiplier=2.0, jitter=0.0, rate_limit_wait=300.0, max_failures=3
)


def fake_config(
    tmp_path: Path,
    *,
    local_port: int = 8080,
    scenario: str = "success",
    fake_env: dict[str, str] | None = None,
    **overrides: Any,
) -> CloudflaredConfig:
    """A config running the fake with short timeouts; the fake's state goes to tmp_path/fake."""
    env = {
        "FAKE_CLOUDFLARED_STATE_DIR": str(tmp_path / "fake"),
        "FAKE_CLOUDFLARED_SCENARIO": scenario,
        **(fake_env or {}),
    }
    values: dict[str, Any] = {
        "mode": "quick",
        "local_port": local_port,
        "executable": str(FAKE_CLOUDFLARED),
        "grace_period": 2.0,
        "kill_margin": 1.0,
        "ready_timeout": 10.0,
        "restart": FAST_RESTARTS,
        "log_file": tmp_path / "logs" / "webhook_tunnel.log",
        "extra_env": env,
    }
    values.update(overrides)
    return CloudflaredConfig(**values)


def starts(tmp_path: Path) -> list[dict[str, Any]]:
    """What each start of the fake recorded (argv, pid, token seen, hostname, public port)."""
    state = tmp_path / "fake"
    records = [json.loads(p.read_text()) for p in state.glob("start-*.json")]
    return sorted(records, key=lambda r: int(r["start"]))


def public_port(tmp_path: Path, url: str) -> int:
    """The local port where the fake serves the public hostname of ``url``."""
    host = urlsplit(url).hostname
    for record in starts(tmp_path):
        if record.get("hostname") == host:
            return int(record["public_port"])
    raise LookupError(f"no fake cloudflared serves {host}")


def make_token(tunnel_id: str | None = None) -> str:
    """A well-formed tunnel token: base64 JSON with account, tunnel id and secret."""
    body = {"a": "0" * 32, "t": tunnel_id or str(uuid.uuid4()), "s": "c2VjcmV0LXRlc3Q="}
    return base64.b64encode(json.dumps(body).encode()).decode()


def free_port() -> int:
    """A loopback TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def process_gone(pid: int) -> bool:
    """True when ``pid`` no longer exists at all: neither running nor a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    state = stat.rsplit(")", 1)[1].split()[0]
    return state == "X"


def is_zombie(pid: int) -> bool:
    """True when ``pid`` exited but nobody reaped it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


async def eventually(
    predicate: Callable[[], bool], *, timeout: float = 10.0, interval: float = 0.02
) -> None:
    """Poll ``predicate`` until true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)


def wait_until(predicate: Callable[[], bool], *, timeout: float = 10.0) -> None:
    """Blocking variant of ``eventually`` for synchronous tests."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(0.02)


class Waits:
    """A fake ``sleep`` for tenacity that records the waits instead of sleeping."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        """Record the wait."""
        self.waits.append(seconds)


def log_text(path: Path) -> str:
    """The tunnel log's current file, decoded."""
    return path.read_text(encoding="utf-8") if path.exists() else ""


def pid_alive(pid: int) -> bool:
    """True while ``pid`` runs (not gone, not a zombie)."""
    return not process_gone(pid) and not is_zombie(pid)


__all__ = [
    "FAKE_CLOUDFLARED",
    "Waits",
    "eventually",
    "fake_config",
    "free_port",
    "is_zombie",
    "log_text",
    "make_token",
    "pid_alive",
    "process_gone",
    "public_port",
    "starts",
    "wait_until",
]
