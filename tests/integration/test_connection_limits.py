"""Connection limits on a real server: idle, slow and huge requests, the cap, the open-files limit."""

from __future__ import annotations

import contextlib
import json
import re
import resource
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from postflow_webhooks.adapters.http.connections import ConnectionLimits
from postflow_webhooks.app.composition import create_app
from tests.support import (
    POSTFLOW_COMMAND,
    command_env,
    free_port,
    receiver_settings,
    running_server,
    wait_for,
)

LIMITS = ConnectionLimits(
    max_header_bytes=16384,
    header_timeout=1.0,
    body_timeout=1.0,
    idle_timeout=1.0,
    max_connections=20,
)
DELIVERY = json.dumps({"event_type": "file.ready", "resource": {"id": "limits-1"}}).encode()


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A receiver with small limits: 1 s for heads, bodies and idling, 20 connections."""
    settings_ = receiver_settings(tmp_path_factory.mktemp("limits"))
    with running_server(create_app(settings_), settings_.port, LIMITS) as base:
        yield base


def connect(url: str) -> socket.socket:
    """A raw TCP connection to the receiver."""
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=15)


def read_all(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    received = b""
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            received += chunk
    return received


def test_a_connection_that_sends_nothing_is_closed(url: str) -> None:
    """Silence from a new connection: closed after header_timeout, nothing answered."""
    with connect(url) as sock:
        assert read_all(sock) == b""
    assert httpx.get(f"{url}/health").status_code == 200


def test_a_head_sent_too_slowly_gets_408(url: str) -> None:
    """Half a head, then nothing: 408 with a JSON reason, and the connection closes."""
    with connect(url) as sock:
        sock.sendall(b"POST /frameio-webhook HTTP/1.1\r\nHost: x\r\n")
        answer = read_all(sock)
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["error"] == "header_timeout"


def test_a_body_sent_too_slowly_gets_408(url: str) -> None:
    """A head promising 100 bytes, one sent: 408 body_timeout, and the receiver goes on."""
    with connect(url) as sock:
        sock.sendall(b"POST /frameio-webhook HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
        answer = read_all(sock)
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["error"] == "body_timeout"
    assert httpx.post(f"{url}/frameio-webhook", content=DELIVERY).status_code == 202


@pytest.mark.parametrize("size", [16385, 1024 * 1024, 32 * 1024 * 1024])
def test_a_head_over_the_limit_gets_431(url: str, size: int) -> None:
    """A head over max_header_bytes (up to 32 MiB sent): 431 at the limit, then closed."""
    with connect(url) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Pad: ")
        with contextlib.suppress(ConnectionResetError, BrokenPipeError):
            sent = 0
            while sent < size:
                sock.sendall(b"a" * 65536)
                sent += 65536
        answer = read_all(sock)
    assert answer.startswith(b"HTTP/1.1 431 ")
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["error"] == "headers_too_large"
    assert httpx.get(f"{url}/health").status_code == 200


def test_a_head_just_under_the_limit_is_served(url: str) -> None:
    """Headers of 16,000 bytes in all are within the limit."""
    answer = httpx.get(f"{url}/health", headers={"X-Pad": "a" * 15800})
    assert answer.status_code == 200


def test_pipelined_requests_are_all_answered(url: str) -> None:
    """Three requests in one write, the last asking to close: three answers, in order."""
    request = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
    last = b"GET /nowhere HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    with connect(url) as sock:
        sock.sendall(request * 2 + last)
        answer = read_all(sock)
    assert re.findall(rb"HTTP/1\.1 (\d{3}) ", answer) == [b"200", b"200", b"404"]


def read_answer(sock: socket.socket) -> bytes:
    """One whole response (head and a Content-Length body), leaving the connection open."""
    answer = b""
    while True:
        head, sep, body = answer.partition(b"\r\n\r\n")
        if sep:
            length = re.search(rb"(?i)content-length: *(\d+)", head)
            assert length is not None, head
            if len(body) >= int(length.group(1)):
                return answer
        chunk = sock.recv(65536)
        assert chunk, f"closed before the answer was complete: {answer!r}"
        answer += chunk


UVICORN_KEEP_ALIVE = 5.0  # uvicorn's own timeout_keep_alive, which idle_timeout replaces


def test_an_idle_keep_alive_connection_is_closed(url: str) -> None:
    """After an answer, the server closes the connection after our idle_timeout, not uvicorn's.

    The close may come late on a slow machine, never early: it must not come
    before idle_timeout (less a margin for clocks), and must come well before
    uvicorn's 5 s default, which would be in force if idle_timeout were ignored.
    """
    assert LIMITS.idle_timeout <= UVICORN_KEEP_ALIVE / 4
    with connect(url) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = read_answer(sock)
        answered = time.monotonic()
        rest = read_all(sock)
        idle = time.monotonic() - answered
    assert answer.startswith(b"HTTP/1.1 200 ") and rest == b""
    assert LIMITS.idle_timeout * 0.5 <= idle < UVICORN_KEEP_ALIVE - 1.0, idle


def test_at_the_cap_the_longest_waiting_connection_makes_room(
    url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Forty idle connections against a cap of 20: deliveries still get 202; a warning says so."""
    caplog.set_level("WARNING", logger="postflow_webhooks.http")
    idle = [connect(url) for _ in range(40)]
    try:
        for index in range(5):
            body = DELIVERY.replace(b"limits-1", f"capped-{index}".encode())
            assert httpx.post(f"{url}/frameio-webhook", content=body).status_code == 202
        wait_for(lambda: "max_connections 20" in caplog.text, timeout=15)
    finally:
        for sock in idle:
            sock.close()
    assert "idle or slow connections closed to make room" in caplog.text


def serve_with_open_files(
    tmp_path: Path, soft: int, hard: int
) -> tuple[subprocess.Popen[str], int]:
    """``serve`` started under an open-files limit of ``soft`` (``hard`` at most), once up."""
    port = free_port()
    env = command_env(tmp_path / "config", POSTFLOW_DATA_DIR=str(tmp_path / "data"))
    log = open(tmp_path / "serve.log", "w", encoding="utf-8")  # noqa: SIM115 - closed by the OS
    process = subprocess.Popen(
        [POSTFLOW_COMMAND, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,
        text=True,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard)),
    )

    def up() -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return process.poll() is not None

    wait_for(up, timeout=30)
    assert process.poll() is None
    return process, port


def test_the_open_files_limit_is_raised_and_the_cap_fits_it(tmp_path: Path) -> None:
    """Soft 256, hard 512: raised to 512, cap lowered to fit; 450 idle connections starve nothing."""
    process, port = serve_with_open_files(tmp_path, 256, 512)
    idle: list[socket.socket] = []
    try:
        idle = [connect(f"http://127.0.0.1:{port}") for _ in range(450)]
        for index in range(5):
            body = DELIVERY.replace(b"limits-1", f"files-{index}".encode())
            answer = httpx.post(f"http://127.0.0.1:{port}/frameio-webhook", content=body)
            assert answer.status_code == 202
        wait_for(lambda: httpx.get(f"http://127.0.0.1:{port}/uploads/files-4").status_code == 200)
    finally:
        for sock in idle:
            sock.close()
        process.terminate()
        process.wait(timeout=30)
    log = (tmp_path / "serve.log").read_text(encoding="utf-8")
    assert "the open-files limit is 512" in log and "at most 412 connections" in log
    assert "max_connections 412" in log


def test_refusals_outside_the_webhook_are_counted_by_reason(tmp_path: Path) -> None:
    """431, 408 and a bad query parameter each appear under their reason in /webhook-status."""
    settings_ = receiver_settings(tmp_path)
    with running_server(create_app(settings_), settings_.port, LIMITS) as base:
        with connect(base) as sock:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 20000)
            assert read_all(sock).startswith(b"HTTP/1.1 431 ")
        with connect(base) as sock:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
            assert read_all(sock).startswith(b"HTTP/1.1 408 ")
        assert httpx.get(f"{base}/uploads", params={"offset": "²"}).status_code == 400

        def rejections() -> dict[str, int]:
            counted: dict[str, int] = httpx.get(f"{base}/webhook-status").json()["rejections"]
            return counted

        wait_for(lambda: len(rejections()) == 3)
        assert rejections() == {"headers_too_large": 1, "header_timeout": 1, "bad_offset": 1}
