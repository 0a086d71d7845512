"""Storage that fails: full disks and locks in /health, damaged files at start, racing starts."""

from __future__ import annotations

import asyncio
import json
import resource
import shutil
import subprocess
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from postflow_webhooks.adapters.sqlite import SqliteDatabase, SqliteJournal, group_commit
from postflow_webhooks.adapters.tracker import FILE_NAME
from postflow_webhooks.app.composition import create_app
from postflow_webhooks.domain.errors import StorageUnavailableError
from postflow_webhooks.domain.journal import IncomingDelivery
from tests.support import (
    POSTFLOW_COMMAND,
    command_env,
    free_port,
    hold_write_lock,
    receiver_settings,
    running_server,
    wait_for,
)

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "release-0.1.0"


def delivery(file_id: str, pad: int = 0) -> bytes:
    """A PostFlow-dialect body, padded to about ``pad`` bytes."""
    return json.dumps(
        {"event_type": "file.ready", "resource": {"id": file_id}, "pad": "p" * pad}
    ).encode()


def health(url: str) -> httpx.Response:
    """GET /health."""
    return httpx.get(f"{url}/health", timeout=10)


def test_a_full_disk_makes_health_503_until_it_has_room_again(tmp_path: Path) -> None:
    """Files that cannot grow: deliveries get 503, /health says why, and recovers by itself."""
    port, url = free_port(), ""
    env = command_env(tmp_path / "config", POSTFLOW_DATA_DIR=str(tmp_path / "data"))
    limit = 3 * 1024 * 1024
    with open(tmp_path / "serve.log", "w", encoding="utf-8") as log:
        process = subprocess.Popen(
            [POSTFLOW_COMMAND, "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
            preexec_fn=lambda: resource.setrlimit(
                resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY)
            ),
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _answers(url) or process.poll() is not None, timeout=30)
        assert health(url).status_code == 200
        codes = [
            httpx.post(f"{url}/frameio-webhook", content=delivery(f"big-{i}", 900_000)).status_code
            for i in range(8)
        ]
        assert 503 in codes, codes
        sick = health(url)
        assert sick.status_code == 503
        failure = sick.json()["store"]["commit_failure"]
        assert failure["reason"] in ("disk_full", "io_error")
        assert any("cannot commit" in problem for problem in sick.json()["problems"])
        resource.prlimit(
            process.pid, resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY)
        )
        wait_for(lambda: health(url).status_code == 200, timeout=20)
        assert httpx.post(f"{url}/frameio-webhook", content=delivery("after")).status_code == 202
        wait_for(lambda: httpx.get(f"{url}/uploads/after").status_code == 200)
    finally:
        process.terminate()
        process.wait(timeout=30)


def _answers(url: str) -> bool:
    try:
        return health(url).status_code < 600
    except httpx.HTTPError:
        return False


def test_a_lock_held_past_patience_makes_health_503_until_released(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another program holds the write lock too long: 503 'locked' in /health, then 200 again."""
    monkeypatch.setattr(group_commit, "BUSY_TIMEOUT_MS", 1000)
    settings_ = receiver_settings(tmp_path)
    with running_server(create_app(settings_), settings_.port) as url:
        other = hold_write_lock(tmp_path / "postflow.sqlite3")
        try:
            answer = httpx.post(f"{url}/frameio-webhook", content=delivery("locked"), timeout=30)
            assert answer.status_code == 503
            sick = health(url)
            assert sick.status_code == 503
            assert sick.json()["store"]["commit_failure"]["reason"] == "locked"
        finally:
            other.execute("ROLLBACK")
            other.close()
        wait_for(lambda: health(url).status_code == 200, timeout=20)


def immutable(path: Path, on: bool) -> None:
    """Set or clear the immutable attribute (``chattr +i``): not even root can write the file."""
    subprocess.run(["chattr", "+i" if on else "-i", str(path)], check=True, capture_output=True)


def can_make_immutable(scratch: Path) -> bool:
    """True when this file system and these privileges allow ``chattr +i`` (root ignores modes)."""
    scratch.write_bytes(b"x")
    try:
        immutable(scratch, True)
    except (OSError, subprocess.CalledProcessError):
        return False
    immutable(scratch, False)
    scratch.unlink()
    return True


async def _create_database(data: Path) -> None:
    db = SqliteDatabase.in_directory(data)
    db.open()
    await db.close()


def test_a_read_only_database_makes_health_503_until_it_is_writable_again(tmp_path: Path) -> None:
    """A database file nobody may write: 503 'read_only' in /health; writable again, 200 again.

    SQLite opens such a file read-only without a word and keeps it so: the
    receiver must open it again to notice it can write.
    """
    if not can_make_immutable(tmp_path / "scratch"):
        pytest.skip("chattr +i is not allowed here (file system or privileges)")
    data = tmp_path / "data"
    asyncio.run(_create_database(data))
    database = data / "postflow.sqlite3"
    immutable(database, True)
    try:
        settings_ = receiver_settings(data)
        with running_server(create_app(settings_), settings_.port) as url:
            refused = httpx.post(f"{url}/frameio-webhook", content=delivery("ro-1"), timeout=30)
            assert refused.status_code == 503
            sick = health(url)
            assert sick.status_code == 503
            failure = sick.json()["store"]["commit_failure"]
            assert failure["reason"] == "read_only" and "read-only" in failure["detail"]
            assert any("cannot commit (read_only)" in p for p in sick.json()["problems"])
            immutable(database, False)
            wait_for(lambda: health(url).status_code == 200, timeout=20)
            assert health(url).json()["store"]["commit_failure"] is None
            answer = httpx.post(f"{url}/frameio-webhook", content=delivery("ro-2"), timeout=30)
            assert answer.status_code == 202
            wait_for(lambda: httpx.get(f"{url}/uploads/ro-2").status_code == 200, timeout=20)
            assert httpx.get(f"{url}/uploads/ro-1").status_code == 404
    finally:
        immutable(database, False)


@pytest.mark.anyio
async def test_a_read_only_database_deleted_meanwhile_is_not_created_anew(tmp_path: Path) -> None:
    """Opening the database again after read_only never creates an empty file in its place."""
    if not can_make_immutable(tmp_path / "scratch"):
        pytest.skip("chattr +i is not allowed here (file system or privileges)")
    data = tmp_path / "data"
    await _create_database(data)
    database = data / "postflow.sqlite3"
    immutable(database, True)
    db = SqliteDatabase.in_directory(data)
    try:
        db.open()
        with pytest.raises(StorageUnavailableError):
            await db.accept(IncomingDelivery(uuid.uuid4().hex, datetime.now(UTC), b"{}", "x", "f"))
        failure = db.commit_failure()
        assert failure is not None and failure.reason == "read_only"
        immutable(database, False)
        database.unlink()
        for _ in range(3):
            await db.recheck()
        assert not database.exists()
        assert db.commit_failure() is not None
    finally:
        if database.exists():
            immutable(database, False)
        await db.close()


def corrupt(path: Path, first_page: int, pages: int) -> None:
    """Overwrite ``pages`` whole pages of an SQLite file with garbage."""
    data = bytearray(path.read_bytes())
    start = 4096 * first_page
    data[start : start + 4096 * pages] = b"\x5a" * (4096 * pages)
    path.write_bytes(bytes(data))


async def _filled_database(data: Path) -> None:
    db = SqliteDatabase.in_directory(data)
    db.open()
    journal = SqliteJournal(db)
    for index in range(2000):
        body = delivery(f"f{index}", 300)
        at = datetime.now(UTC)
        await journal.append(IncomingDelivery(uuid.uuid4().hex, at, body, "file.ready", "f"))
    await db.close()


def damaged(case: str, data: Path) -> Path:
    """A data directory damaged as ``case`` says; the damaged file."""
    data.mkdir(parents=True)
    if case == "database header":
        (data / "postflow.sqlite3").write_bytes(b"not a database" * 300)
        return data / "postflow.sqlite3"
    if case == "database pages":
        asyncio.run(_filled_database(data))
        corrupt(data / "postflow.sqlite3", 20, 3)
        return data / "postflow.sqlite3"
    if case == "0.1.0 inbox":
        for path in FIXTURE.glob("*.sqlite3"):
            shutil.copy(path, data / path.name)
        corrupt(data / "postflow-inbox.sqlite3", 1, 2)
        return data / "postflow-inbox.sqlite3"
    tracker = data / FILE_NAME
    if case == "tracker not UTF-8":
        tracker.write_bytes(b'{"version": "1.0", "uploads": {"a": {"filename": "\xff\xfe"}}}')
    else:
        tracker.write_bytes(b'{"version": "1.0", "uploads": {"a": ')
    return tracker


@pytest.mark.parametrize(
    "case",
    ["database header", "database pages", "0.1.0 inbox", "tracker not UTF-8", "tracker not JSON"],
)
def test_a_damaged_file_at_start_is_named_with_its_fix(tmp_path: Path, case: str) -> None:
    """Whichever file and damage: exit 1, one message naming the file and the fix, file untouched."""
    data = tmp_path / "data"
    bad = damaged(case, data)
    before = bad.read_bytes()
    env = command_env(tmp_path / "config", POSTFLOW_DATA_DIR=str(data), POSTFLOW_STORE="json")
    done = subprocess.run(
        [POSTFLOW_COMMAND, "serve", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    kind = "tracker file" if "tracker" in case else "database"
    assert f"Error: cannot use the {kind} {bad}: " in done.stderr
    assert "The file was left untouched." in done.stderr
    assert "move it aside" in done.stderr
    assert bad.read_bytes() == before


def test_two_receivers_started_at_once_end_with_one_serving(tmp_path: Path) -> None:
    """Same data directory, same port, same instant: one serves, one exits 1 with the reason."""
    port = free_port()
    env = command_env(tmp_path / "config", POSTFLOW_DATA_DIR=str(tmp_path / "data"))
    racers = [
        subprocess.Popen(
            [POSTFLOW_COMMAND, "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    try:
        wait_for(lambda: any(r.poll() is not None for r in racers), timeout=30)
        (loser,) = [r for r in racers if r.poll() is not None]
        (winner,) = [r for r in racers if r is not loser]
        _, said = loser.communicate(timeout=10)
        assert loser.returncode == 1 and "Traceback" not in said
        assert "is using the data directory" in said
        wait_for(lambda: _answers(f"http://127.0.0.1:{port}"), timeout=30)
        assert winner.poll() is None
    finally:
        for racer in racers:
            racer.terminate()
            racer.wait(timeout=30)


def test_a_tracker_file_damaged_while_running_is_reported_clearly(tmp_path: Path) -> None:
    """Invalid UTF-8 in the tracker file: /uploads still answers, /health names the fix."""
    settings_ = receiver_settings(tmp_path, store="json")
    with running_server(create_app(settings_), settings_.port) as url:
        post = httpx.post(f"{url}/frameio-webhook", content=delivery("tracked-1"))
        assert post.status_code == 202
        tracker = tmp_path / FILE_NAME
        wait_for(lambda: tracker.exists() and b"tracked-1" in tracker.read_bytes())
        tracker.write_bytes(tracker.read_bytes().replace(b"tracked-1.", b"\xff") + b"\xfe")
        damaged_bytes = tracker.read_bytes()
        post = httpx.post(f"{url}/frameio-webhook", content=delivery("tracked-2"))
        assert post.status_code == 202

        def warned() -> str:
            found = [w for w in health(url).json()["warnings"] if w.startswith("tracker")]
            return found[0] if found else ""

        wait_for(warned)
        assert "not valid UTF-8" in warned() and "left untouched" in warned()
        listed = httpx.get(f"{url}/uploads").json()["uploads"]
        assert {u["file_id"] for u in listed} == {"tracked-1", "tracked-2"}
        assert tracker.read_bytes() == damaged_bytes
