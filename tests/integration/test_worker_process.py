"""The worker in its own process: applied, restarted, stopped, never two at once."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from postflow_webhooks.app import worker_process
from postflow_webhooks.app.composition import create_app
from postflow_webhooks.app.worker_host import LOCK_NAME
from tests.support import free_port, receiver_settings, running_server, wait_for


def deliver(url: str, file_id: str, event: str = "file.created") -> httpx.Response:
    """POST one unsigned PostFlow-dialect delivery."""
    body = {"event_type": event, "resource": {"id": file_id, "name": f"{file_id}.mov"}}
    return httpx.post(f"{url}/frameio-webhook", content=json.dumps(body).encode(), timeout=10)


def health(url: str) -> dict[str, object]:
    """The receiver's /health body."""
    body: dict[str, object] = httpx.get(f"{url}/health", timeout=10).json()
    return body


def worker_of(url: str) -> dict[str, object]:
    """The worker section of /health."""
    section = health(url)["worker"]
    assert isinstance(section, dict)
    return section


def states(data_dir: Path) -> dict[str, int]:
    """Deliveries by state, read straight from the database."""
    with sqlite3.connect(data_dir / "postflow.sqlite3") as db:
        return dict(db.execute("SELECT state, count(*) FROM deliveries GROUP BY state").fetchall())


def pid_alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ")[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def niceness(pid: int) -> int:
    """A process's nice value, from /proc."""
    with open(f"/proc/{pid}/stat") as stat:
        return int(stat.read().split(") ")[1].split()[16])


def test_the_worker_runs_in_its_own_process_and_applies_deliveries(tmp_path: Path) -> None:
    """By default the worker is another, lower-priority process; deliveries still get applied."""
    settings = receiver_settings(tmp_path)
    with running_server(create_app(settings), settings.port) as url:
        wait_for(lambda: worker_of(url)["alive"] is True)
        worker = worker_of(url)
        assert worker["own_process"] is True and worker["pid"] != os.getpid()
        assert niceness(int(str(worker["pid"]))) > niceness(os.getpid())
        assert deliver(url, "own-1", "file.ready").status_code == 202
        wait_for(lambda: httpx.get(f"{url}/uploads/own-1").status_code == 200)
        assert httpx.get(f"{url}/uploads/own-1").json()["status"] == "COMPLETED"


def test_the_worker_can_run_in_the_receivers_process(tmp_path: Path) -> None:
    """``worker_process=False`` keeps the worker in the receiver's own process."""
    settings = receiver_settings(tmp_path, worker_process=False)
    with running_server(create_app(settings), settings.port) as url:
        worker = worker_of(url)
        assert worker["own_process"] is False and worker["pid"] == os.getpid()
        assert deliver(url, "here-1", "file.ready").status_code == 202
        wait_for(lambda: httpx.get(f"{url}/uploads/here-1").status_code == 200)


def test_a_killed_worker_is_restarted_and_applies_what_arrived_meanwhile(
    tmp_path: Path,
) -> None:
    """``kill -9`` of the worker: deliveries are still accepted, then applied once each."""
    settings = receiver_settings(tmp_path)
    with running_server(create_app(settings), settings.port) as url:
        wait_for(lambda: worker_of(url)["alive"] is True)
        first = worker_of(url)["pid"]
        assert isinstance(first, int)
        for index in range(20):
            assert deliver(url, f"before-{index}").status_code == 202
        os.kill(first, signal.SIGKILL)
        for index in range(20):
            assert deliver(url, f"during-{index}").status_code == 202
        wait_for(lambda: worker_of(url)["restarts"] == 1, timeout=20)
        wait_for(lambda: states(tmp_path).get("pending", 0) == 0, timeout=20)
        worker = worker_of(url)
        assert worker["alive"] is True and worker["pid"] != first
        listed = httpx.get(f"{url}/uploads", params={"limit": 100}).json()
    assert states(tmp_path) == {"processed": 40}
    ids = sorted(item["file_id"] for item in listed["uploads"])
    assert len(ids) == 40 and len(set(ids)) == 40


def test_a_stuck_worker_is_killed_and_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker that stops reporting (here: SIGSTOP) is killed, restarted, and catches up."""
    monkeypatch.setattr(worker_process, "HUNG_SECONDS", 1.5)
    settings = receiver_settings(tmp_path)
    with running_server(create_app(settings), settings.port) as url:
        wait_for(lambda: worker_of(url)["alive"] is True)
        stuck = worker_of(url)["pid"]
        assert isinstance(stuck, int)
        os.kill(stuck, signal.SIGSTOP)
        assert deliver(url, "while-stuck", "file.ready").status_code == 202
        wait_for(lambda: worker_of(url)["alive"] is False, timeout=10)
        wait_for(lambda: worker_of(url)["restarts"] == 1, timeout=20)
        wait_for(lambda: httpx.get(f"{url}/uploads/while-stuck").status_code == 200, timeout=20)
        assert worker_of(url)["pid"] != stuck
    assert not pid_alive(stuck)


def test_a_new_worker_waits_while_another_holds_the_data_directory(tmp_path: Path) -> None:
    """Two workers never apply one data directory: the second waits for the first's lock."""
    settings = receiver_settings(tmp_path)
    tmp_path.mkdir(exist_ok=True)
    holder = os.open(tmp_path / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(holder, fcntl.LOCK_EX)
    released_at: list[float] = []

    def release() -> None:
        time.sleep(1.0)
        released_at.append(time.monotonic())
        os.close(holder)

    threading.Thread(target=release, daemon=True).start()
    with running_server(create_app(settings), settings.port) as url:
        ready_at = time.monotonic()
        assert released_at and ready_at >= released_at[0]
        assert worker_of(url)["alive"] is True


@contextmanager
def serving(data_dir: Path) -> Iterator[tuple[subprocess.Popen[bytes], str, int]]:
    """``postflow-webhooks serve`` in its own session; yields it, its URL and its worker's pid."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("POSTFLOW_")}
    env["POSTFLOW_CONFIG_DIR"] = str(data_dir / "no-config")
    command = [sys.executable, "-m", "postflow_webhooks.app.cli", "serve", "--port", str(port)]
    command += ["--data-dir", str(data_dir)]
    server = subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"

    def worker_up() -> bool:
        try:
            return worker_of(url)["alive"] is True
        except httpx.HTTPError:
            assert server.poll() is None
            return False

    try:
        wait_for(worker_up, timeout=30)
        worker_pid = worker_of(url)["pid"]
        assert isinstance(worker_pid, int) and worker_pid != server.pid
        yield server, url, worker_pid
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


def test_the_worker_leaves_when_the_receiver_is_killed(tmp_path: Path) -> None:
    """``kill -9`` of the receiver: its worker notices and exits, no orphan is left."""
    with serving(tmp_path) as (server, url, worker_pid):
        assert deliver(url, "last-1").status_code == 202
        os.kill(server.pid, signal.SIGKILL)
        server.wait(timeout=10)
        wait_for(lambda: not pid_alive(worker_pid), timeout=15)
    assert states(tmp_path) == {"processed": 1}


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_to_the_whole_group_stops_both_cleanly(tmp_path: Path, signum: int) -> None:
    """Ctrl-C (or a service manager's SIGTERM) to the group: both exit, nothing is left pending."""
    with serving(tmp_path) as (server, url, worker_pid):
        for index in range(10):
            assert deliver(url, f"group-{index}").status_code == 202
        os.killpg(server.pid, signum)
        _, stderr = server.communicate(timeout=30)
        wait_for(lambda: not pid_alive(worker_pid), timeout=15)
    assert server.returncode == 0, stderr.decode()
    assert b"restarting" not in stderr
    assert states(tmp_path) == {"processed": 10}


def test_with_the_json_store_the_worker_process_writes_postflows_tracker_file(
    tmp_path: Path,
) -> None:
    """``store=json``: the worker process writes the tracker file; the receiver lists it."""
    settings = receiver_settings(tmp_path, store="json")
    with running_server(create_app(settings), settings.port) as url:
        wait_for(lambda: worker_of(url)["alive"] is True)
        assert worker_of(url)["own_process"] is True
        for index in range(3):
            assert deliver(url, f"json-{index}", "file.ready").status_code == 202
        wait_for(lambda: httpx.get(f"{url}/uploads").json()["total"] == 3, timeout=20)
        listed = httpx.get(f"{url}/uploads").json()["uploads"]
    tracker = json.loads((tmp_path / "uploads_tracking.json").read_text())
    linked = {entry["frameio_data"]["file_id"]: entry for entry in tracker["uploads"].values()}
    assert sorted(linked) == ["json-0", "json-1", "json-2"]
    assert {entry["status"] for entry in linked.values()} == {"COMPLETED 🎉"}
    assert sorted(item["file_id"] for item in listed) == sorted(linked)
