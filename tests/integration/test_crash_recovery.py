"""``kill -9`` of ``serve``: nothing acknowledged is lost, and a restart always comes up."""

from __future__ import annotations

import concurrent.futures
import json
import os
import signal
import socket
import sqlite3
import subprocess
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest

from tests.support import POSTFLOW_COMMAND, command_env, free_port, start_serve, wait_for

pytestmark = pytest.mark.slow
# A Discord destination nobody listens on: notifications are queued and stay in the outbox.
# The port stays bound (never listening) so that no other server can take it meanwhile.
_CLOSED = socket.socket()
_CLOSED.bind(("127.0.0.1", 0))
UNREACHABLE_DISCORD = f"http://127.0.0.1:{_CLOSED.getsockname()[1]}/api/webhooks/1/x"


def serve_env(data_dir: Path) -> dict[str, str]:
    """The operator's environment: no config files, an unreachable Discord webhook."""
    return command_env(data_dir / "no-config", POSTFLOW_DISCORD_WEBHOOK_URL=UNREACHABLE_DISCORD)


def start_server(data_dir: Path, port: int) -> subprocess.Popen[str]:
    """The real command line, as an operator runs it; its log goes to ``data_dir/serve.log``."""
    process = start_serve(
        serve_env(data_dir), port, "--data-dir", str(data_dir), log=data_dir / "serve.log"
    )
    assert httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200
    return process


def burst(port: int, server: subprocess.Popen[str], count: int, kill_at: int) -> dict[str, str]:
    """Send ``count`` new files from 16 threads; ``kill -9`` the server at the ``kill_at``-th 202.

    Returns file id -> delivery id for every delivery that was acknowledged.
    """
    accepted: dict[str, str] = {}
    lock = threading.Lock()
    prefix = uuid.uuid4().hex[:8]

    def send(index: int) -> None:
        file_id = f"{prefix}-{index}"
        body = json.dumps(
            {"event_type": "file.created", "resource": {"id": file_id, "name": f"{index}.mov"}}
        ).encode()
        try:
            answer = http.post(f"http://127.0.0.1:{port}/frameio-webhook", content=body)
        except httpx.HTTPError:
            return
        if answer.status_code == 202:
            with lock:
                accepted[file_id] = answer.json()["delivery_id"]
                if len(accepted) == kill_at:
                    os.kill(server.pid, signal.SIGKILL)

    with httpx.Client(timeout=5) as http, concurrent.futures.ThreadPoolExecutor(16) as pool:
        list(pool.map(send, range(count)))
    server.wait(timeout=10)
    assert server.returncode == -signal.SIGKILL
    assert len(accepted) >= kill_at
    return accepted


def drain_and_stop(port: int, server: subprocess.Popen[str]) -> None:
    """Wait until the backlog is applied, then stop the server with SIGTERM (exit 0)."""
    try:
        wait_for(
            lambda: httpx.get(f"http://127.0.0.1:{port}/health").json()["backlog"] == 0,
            timeout=30,
        )
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=20) == 0


def assert_applied_once(data_dir: Path, accepted: dict[str, str]) -> None:
    """Each acknowledged delivery is processed, in its file's history once, announced once."""
    db = sqlite3.connect(data_dir / "postflow.sqlite3")
    records = {
        row[0]: json.loads(row[1]) for row in db.execute("SELECT file_id, record FROM uploads")
    }
    states = dict(db.execute("SELECT delivery_id, state FROM deliveries").fetchall())
    queued: dict[str, list[str]] = {}
    for file_id, body in db.execute("SELECT file_id, body FROM notifications ORDER BY id"):
        queued.setdefault(file_id, []).append(json.loads(body)["delivery_id"])
    db.close()
    for file_id, delivery_id in accepted.items():
        assert states.get(delivery_id) == "processed", file_id
        history = records[file_id]["history"]
        assert [h["delivery_id"] for h in history] == [delivery_id], file_id
        assert queued.get(file_id) == [delivery_id], file_id
    assert set(states.values()) == {"processed"}
    assert sorted(queued) == sorted(records), "every record has its notification, none other"
    assert len(records) == len(states)


def add_pending(data_dir: Path, count: int) -> dict[str, str]:
    """Deliveries committed but not yet applied, as a killed receiver can leave them."""
    added = {}
    db = sqlite3.connect(data_dir / "postflow.sqlite3")
    with db:
        for _ in range(count):
            file_id, delivery_id = f"left-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
            body = {"event_type": "file.created", "resource": {"id": file_id, "name": "l.mov"}}
            db.execute(
                "INSERT INTO deliveries (delivery_id, received_at, event_type, file_id, body, "
                "signed) VALUES (?, ?, 'file.created', ?, ?, 0)",
                (delivery_id, time.time(), file_id, json.dumps(body).encode()),
            )
            added[file_id] = delivery_id
    db.close()
    return added


def test_kill_9_during_a_burst_loses_no_acknowledged_delivery(tmp_path: Path) -> None:
    """After kill -9 and a restart, each 202 is applied exactly once; nothing is half-applied."""
    port = free_port()
    accepted = burst(port, start_server(tmp_path, port), count=400, kill_at=100)
    drain_and_stop(port, start_server(tmp_path, port))
    assert_applied_once(tmp_path, accepted)


def test_a_restart_right_after_kill_9_always_comes_up(tmp_path: Path) -> None:
    """20 times: kill -9 with deliveries and notifications pending; the restart always serves."""
    port = free_port()
    server = start_server(tmp_path, port)
    accepted: dict[str, str] = {}
    for _ in range(20):
        accepted |= burst(port, server, count=12, kill_at=6)
        accepted |= add_pending(tmp_path, 3)
        server = start_server(tmp_path, port)
        outbox = httpx.get(f"http://127.0.0.1:{port}/webhook-status").json()["notifications"]
        assert outbox["pending"] > 0
    drain_and_stop(port, server)
    log = (tmp_path / "serve.log").read_text(encoding="utf-8")
    assert log.count("receiver started") == 21
    assert "another receiver" not in log and "Traceback" not in log
    assert_applied_once(tmp_path, accepted)


def test_a_second_serve_on_a_data_directory_in_use_is_refused_at_once(tmp_path: Path) -> None:
    """While one ``serve`` runs, another on its data directory exits 1, naming it, unbound."""
    port = free_port()
    first = start_server(tmp_path, port)
    try:
        # The first one's port: had the second bound its socket before taking the data
        # directory, it would have failed on the port instead.
        second = subprocess.run(
            [POSTFLOW_COMMAND, "serve", "--port", str(port), "--data-dir", str(tmp_path)],
            env=serve_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert first.poll() is None, "the second one waited for the first to end"
        health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=5)
    finally:
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=20) == 0
    assert second.returncode == 1
    assert f"(pid {first.pid}) is using the data directory {tmp_path}" in second.stderr
    assert "Traceback" not in second.stderr
    assert f"port {port}" not in second.stderr and "Receiver:" not in second.stderr
    assert health.status_code == 200
