"""Helpers shared by the integration tests: real servers on loopback, signing, polling."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette

from postflow_webhooks.adapters.http.signature import sign
from postflow_webhooks.app.settings import Settings


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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
def running_server(app: Starlette, port: int) -> Iterator[str]:
    """Serve ``app`` with a real uvicorn on 127.0.0.1:``port`` in a thread; yield its URL."""
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="on"
    )
    server = uvicorn.Server(config)
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
