"""Start, watch and stop the servers a benchmark measures.

Every server runs under the same uvicorn settings (``UVICORN_FLAGS``) in a
process of its own; ``Server`` starts it, waits for ``GET /health`` to answer
200, reads its backlog and stops it with SIGTERM.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from bench import proc

HOST = "127.0.0.1"
UVICORN_FLAGS = [
    "--loop",
    "uvloop",
    "--http",
    "httptools",
    "--no-access-log",
    "--log-level",
    "warning",
]
RECEIVER_FACTORY = "postflow_webhooks.app.composition:create_app"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 60.0


def free_port() -> int:
    """A free loopback port."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def uvicorn_command(app: str, port: int, *, factory: bool = False) -> list[str]:
    """``python -m uvicorn`` serving ``app`` on ``port`` (uvicorn's default host is ``HOST``)."""
    return [
        sys.executable,
        "-m",
        "uvicorn",
        *(["--factory"] if factory else []),
        app,
        "--port",
        str(port),
        *UVICORN_FLAGS,
    ]


def clean_env() -> dict[str, str]:
    """This process's environment without any ``POSTFLOW_*`` variable."""
    return {k: v for k, v in os.environ.items() if not k.startswith("POSTFLOW_")}


def receiver_env(secret: str, data_dir: Path) -> dict[str, str]:
    """The receiver's environment: ``data_dir``, an empty config dir in it, nothing else set."""
    config = data_dir / "config"
    config.mkdir(parents=True, exist_ok=True)
    return {
        **clean_env(),
        "POSTFLOW_WEBHOOK_SECRET": secret,
        "POSTFLOW_DATA_DIR": str(data_dir),
        "POSTFLOW_CONFIG_DIR": str(config),
        "POSTFLOW_LOG_LEVEL": "WARNING",
    }


class ServerError(RuntimeError):
    """A server that did not start, or did not stop."""


class Server:
    """One server process on ``HOST:port``; a context manager that stops it on exit."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], port: int) -> None:
        self.name = name
        self.command = command
        self.env = env
        self.port = port
        self.url = f"http://{HOST}:{port}"
        self._process: subprocess.Popen[bytes] | None = None
        self._client = httpx.Client(base_url=self.url, timeout=5)

    @property
    def pid(self) -> int:
        """The server's process id (the root of its process tree)."""
        if self._process is None:
            raise ServerError(f"{self.name} is not running")
        return self._process.pid

    def start(self) -> None:
        """Start the process and wait until ``/health`` answers 200."""
        self._process = subprocess.Popen(self.command, env=self.env)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise ServerError(f"{self.name} exited with {self._process.returncode} at start")
            try:
                if self._client.get("/health").status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self._process.kill()
        self._process.wait()
        raise ServerError(f"{self.name}: /health did not answer 200 in {START_TIMEOUT:.0f} s")

    def health(self) -> dict[str, Any] | None:
        """``/health``'s JSON body whatever its status, or ``None`` if it did not answer."""
        try:
            body = self._client.get("/health").json()
        except (httpx.HTTPError, ValueError):
            return None
        return body if isinstance(body, dict) else None

    def backlog(self) -> int | None:
        """Deliveries accepted but not yet applied; ``None`` if not known (yet)."""
        body = self.health()
        value = body.get("backlog") if body else None
        return value if isinstance(value, int) else None

    def wait_drained(self, timeout: float, interval: float = 0.02) -> float | None:
        """Poll until the backlog is 0; the ``time.monotonic()`` it was seen so, or ``None``."""
        deadline = time.monotonic() + timeout
        while True:
            if self.backlog() == 0:
                return time.monotonic()
            if time.monotonic() > deadline:
                return None
            time.sleep(interval)

    def stop(self) -> list[int]:
        """SIGTERM and wait; the pids of its tree that outlived it (should be none)."""
        if self._process is None:
            return []
        members = [stat.pid for stat in proc.tree(self._process.pid)[1:]]
        self._process.send_signal(signal.SIGTERM)
        try:
            self._process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
            raise ServerError(
                f"{self.name} did not stop within {STOP_TIMEOUT:.0f} s of SIGTERM"
            ) from None
        finally:
            self._process = None
            self._client.close()
        deadline = time.monotonic() + 5
        while any(proc.alive(pid) for pid in members) and time.monotonic() < deadline:
            time.sleep(0.05)
        return [pid for pid in members if proc.alive(pid)]

    def kill(self) -> None:
        """``kill -9`` the server and reap it; ``start`` may run it again."""
        if self._process is not None:
            self._process.send_signal(signal.SIGKILL)
            self._process.wait()
            self._process = None

    def __enter__(self) -> Server:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._process is not None:
            self.stop()
