"""Helpers shared by the integration tests: real servers on loopback, signing, polling."""

from __future__ import annotations

import contextlib
import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette

from postflow_webhooks.adapters.http.connections import ConnectionLimits
from postflow_webhooks.adapters.http.signature import sign
from postflow_webhooks.adapters.sqlite import DATABASE_NAME
from postflow_webhooks.app.server import make_server
from postflow_webhooks.app.settings import Settings

# The installed ``postflow-webhooks`` command, next to the interpreter running the tests.
POSTFLOW_COMMAND = str(Path(sys.executable).with_name("postflow-webhooks"))


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def quarantine_one(settings: Settings, file_id: str = "f9") -> None:
    """Put a quarantined delivery in the database, as a broken body stored earlier ends up."""
    db = sqlite3.connect(settings.data_dir / DATABASE_NAME, isolation_level=None)
    try:
        db.execute(
            "INSERT INTO deliveries (delivery_id, received_at, event_type, file_id, body, state, "
            "last_error) VALUES ('bad', 0, 'file.ready', ?, x'7b', 'quarantined', 'unreadable')",
            (file_id,),
        )
    finally:
        db.close()


def receiver_settings(data_dir: Path, **overrides: Any) -> Settings:
    """Settings for a receiver under test: loopback, a free port, the given data dir."""
    values: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": free_port(),
        "data_dir": data_dir,
        "config_dir": data_dir / "config",
    }
    values.update(overrides)
    return Settings(**values)


@contextmanager
def running_server(
    app: Starlette, port: int, limits: ConnectionLimits | None = None
) -> Iterator[str]:
    """Serve ``app`` as ``serve`` does (uvicorn, the connection limits) in a thread; yield its URL."""
    server = make_server(app, "127.0.0.1", port, limits)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started or not thread.is_alive(), timeout=20)
    if not server.started:
        raise RuntimeError("the test server did not start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)


def wait_for(condition: Callable[[], object], timeout: float = 10.0, every: float = 0.02) -> None:
    """Poll ``condition`` until it is true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(every)
    raise AssertionError(f"condition not met within {timeout} s")


def signed_headers(secret: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """Headers Frame.io would send for ``body``."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    return {
        "Content-Type": "application/json",
        "X-Frameio-Request-Timestamp": stamp,
        "X-Frameio-Signature": sign(secret, stamp, body),
    }


def command_env(config_dir: Path, **extra: str) -> dict[str, str]:
    """An environment for the real command, without the developer's own POSTFLOW_ settings."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("POSTFLOW_", "TUNNEL_")) and k != "STATE_DIRECTORY"
    }
    env["POSTFLOW_CONFIG_DIR"] = str(config_dir)
    env.update(extra)
    return env


def start_serve(
    env: dict[str, str], port: int, *args: str, log: Path | None = None
) -> subprocess.Popen[str]:
    """``postflow-webhooks serve --port PORT ARGS`` in the background, once /health answers.

    Its stderr is a pipe, or the file ``log`` (appended to) for a process that logs a lot.
    """
    with open(log, "a", encoding="utf-8") if log else contextlib.nullcontext() as sink:
        process = subprocess.Popen(
            [POSTFLOW_COMMAND, "serve", "--port", str(port), *args],
            env=env,
            stdout=subprocess.DEVNULL if log else subprocess.PIPE,
            stderr=sink or subprocess.PIPE,
            text=True,
        )

    def up() -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code < 600
        except httpx.HTTPError:
            return process.poll() is not None

    def said() -> object:
        output = process.communicate()
        return log.read_text(encoding="utf-8") if log else output

    try:
        wait_for(up, timeout=30)
    except AssertionError:
        process.kill()
        raise AssertionError(f"serve did not answer /health: {said()}") from None
    assert process.poll() is None, said()
    return process


def hold_write_lock(path: Path) -> sqlite3.Connection:
    """Another process's view of the database (a CLI command, say), holding its write lock."""
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    return other
