"""``kill -9`` during a burst: every acknowledged delivery survives and is applied once."""

from __future__ import annotations

import concurrent.futures
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from tests.support import free_port, wait_for

pytestmark = pytest.mark.slow
CLOSED_PORT = free_port()


def start_server(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    """The real command line, as an operator runs it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("POSTFLOW_")}
    env["POSTFLOW_CONFIG_DIR"] = str(data_dir / "no-config")
    # A destination, so that notifications are queued (nobody listens there: they
    # stay in the outbox, where the test counts them).
    env["POSTFLOW_DISCORD_WEBHOOK_URL"] = f"http://127.0.0.1:{CLOSED_PORT}/api/webhooks/1/t"
    command = [
        sys.executable,
        "-m",
        "postflow_webhooks.app.cli",
        "serve",
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
    ]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}/health"

    def up() -> bool:
        try:
            return httpx.get(url, timeout=1).status_code == 200
        except httpx.HTTPError:
            return process.poll() is not None

    wait_for(up, timeout=30)
    assert process.poll() is None, process.stderr.read() if process.stderr else b""
    return process


def test_kill_9_during_a_burst_loses_no_acknowledged_delivery(tmp_path: Path) -> None:
    """After kill -9 and a restart, each 202 is applied exactly once; nothing is half-applied."""
    port = free_port()
    server = start_server(tmp_path, port)
    accepted: dict[str, str] = {}
    lock = threading.Lock()
    kill_at = 150

    def send(index: int) -> None:
        body = json.dumps(
            {
                "event_type": "file.created",
                "resource": {"id": f"file-{index}", "name": f"{index}.mov"},
            }
        ).encode()
        try:
            answer = http.post(f"http://127.0.0.1:{port}/frameio-webhook", content=body)
        except httpx.HTTPError:
            return
        if answer.status_code == 202:
            with lock:
                accepted[f"file-{index}"] = answer.json()["delivery_id"]
                if len(accepted) == kill_at:
                    os.kill(server.pid, signal.SIGKILL)

    with httpx.Client(timeout=5) as http, concurrent.futures.ThreadPoolExecutor(16) as pool:
        list(pool.map(send, range(600)))
    server.wait(timeout=10)
    assert server.returncode == -signal.SIGKILL
    assert len(accepted) >= kill_at

    restarted = start_server(tmp_path, port)
    try:
        wait_for(
            lambda: httpx.get(f"http://127.0.0.1:{port}/health").json()["backlog"] == 0, timeout=30
        )
    finally:
        restarted.send_signal(signal.SIGTERM)
        assert restarted.wait(timeout=20) == 0

    db = sqlite3.connect(tmp_path / "postflow.sqlite3")
    records = {
        row[0]: json.loads(row[1]) for row in db.execute("SELECT file_id, record FROM uploads")
    }
    states = dict(db.execute("SELECT delivery_id, state FROM deliveries").fetchall())
    notified = [row[0] for row in db.execute("SELECT file_id FROM notifications")]
    db.close()
    for file_id, delivery_id in accepted.items():
        assert states.get(delivery_id) == "processed", file_id
        history = records[file_id]["history"]
        assert [h["delivery_id"] for h in history] == [delivery_id]
    assert set(states.values()) == {"processed"}
    assert sorted(notified) == sorted(records), "every record has its one notification"
    assert len(records) == len(states)
