"""Release 0.1.0's data directory opens with nothing lost, merged once; a newer one is refused."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from postflow_webhooks.adapters.sqlite import SqliteDatabase, SqliteOutbox, SqliteRecords
from postflow_webhooks.adapters.sqlite.schema import LATEST
from postflow_webhooks.app.composition import create_app
from postflow_webhooks.domain.errors import StorageError
from tests.support import (
    POSTFLOW_COMMAND,
    command_env,
    free_port,
    receiver_settings,
    running_server,
    wait_for,
)

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "release-0.1.0"
INBOX = "postflow-inbox.sqlite3"
DATABASE = "postflow.sqlite3"
FILES = ("file-a", "file-b", "file-c", "file-d")


@pytest.fixture
def old_data_dir(tmp_path: Path) -> Path:
    """A copy of the data directory release 0.1.0 left (see the fixture's README)."""
    data = tmp_path / "data"
    data.mkdir()
    for path in FIXTURE.glob("*.sqlite3"):
        shutil.copy(path, data / path.name)
    return data


def serve_once(data_dir: Path, **store: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run the receiver on ``data_dir`` (or ``store``) until its backlog is applied; its views."""
    settings = receiver_settings(data_dir, retention_days=3650, **store)
    with (
        running_server(create_app(settings), settings.port) as url,
        httpx.Client(base_url=url, timeout=10) as http,
    ):
        wait_for(lambda: http.get("/webhook-status").json()["backlog"] == 0)
        status = http.get("/webhook-status").json()
        files = {file_id: http.get(f"/uploads/{file_id}").json() for file_id in FILES}
    return status, files


def replay_listing(data_dir: Path) -> dict[str, Any]:
    """What ``postflow-webhooks replay --json`` lists for ``data_dir``."""
    done = subprocess.run(
        [POSTFLOW_COMMAND, "replay", "--data-dir", str(data_dir), "--json"],
        env=command_env(data_dir / "no-config"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    listing: dict[str, Any] = json.loads(done.stdout)
    return listing


def counters(status: dict[str, Any]) -> tuple[Any, ...]:
    """The counters a migration must carry over."""
    return (status["total_events"], status["events_by_type"], status["rejections"])


def test_a_0_1_0_data_directory_keeps_every_counter_record_and_notification(
    old_data_dir: Path,
) -> None:
    """0.1.0's two files become one: counters, files, quarantine, outbox kept; the rest applied."""
    status, files = serve_once(old_data_dir)
    assert status["total_events"] == 11
    assert status["events_by_type"] == {
        "file.upload.completed": 4,
        "file.ready": 3,
        "review.status.changed": 3,
        "comment.created": 1,
    }
    assert status["rejections"] == {"bad_signature": 2, "not_json": 1}
    assert status["quarantined"] == 1
    assert status["last_event"]["file_id"] == "file-d"
    assert files["file-a"]["status"] == "APPROVED"
    assert files["file-a"]["view_url"] == "https://app.frame.io/view/a"
    assert files["file-b"]["status"] == "WAITING_APPROVAL"
    assert files["file-b"]["comment_count"] == 1
    assert files["file-b"]["last_comment"]["text"] == "Grade is too warm"
    assert files["file-c"]["status"] == "REJECTED"
    assert [h["delivery_id"] for h in files["file-c"]["history"]][-2:] == [
        "fixture-009",
        "fixture-010",
    ]
    assert files["file-d"]["status"] == "PROCESSING"
    notifications = status["notifications"]
    assert notifications["pending"] == 4 and notifications["dead_letters"] == 1
    [dead] = notifications["recent_dead_letters"]
    assert dead["file_id"] == "file-a" and "400" in dead["reason"]

    assert not (old_data_dir / INBOX).exists()
    assert (old_data_dir / f"{INBOX}.merged").exists()
    with sqlite3.connect(old_data_dir / DATABASE) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == LATEST
    listing = replay_listing(old_data_dir)
    [quarantined] = listing["quarantined"]
    assert quarantined["delivery_id"] == "fixture-008"
    assert quarantined["reason"] == "the core failed: ValueError: fixture"
    [letter] = listing["dead_letters"]
    assert letter["file_id"] == "file-a" and "400" in letter["reason"]
    assert listing["replayed_deliveries"] == 0 and listing["replayed_notifications"] == 0


def test_a_second_start_does_not_merge_the_old_inbox_again(old_data_dir: Path) -> None:
    """After the migration, a restart (even with 0.1.0's inbox file restored) changes no counter."""
    first, files = serve_once(old_data_dir)
    shutil.copy(FIXTURE / INBOX, old_data_dir / INBOX)
    second, files_again = serve_once(old_data_dir)
    assert counters(second) == counters(first)
    assert second["quarantined"] == 1 and second["backlog"] == 0
    assert second["notifications"]["pending"] == 4
    assert second["notifications"]["dead_letters"] == 1
    assert files_again == files
    assert (old_data_dir / INBOX).exists(), "a file it did not merge is left alone"


def newer_database(data_dir: Path) -> Path:
    """A database whose layout version is past what this release knows."""
    data_dir.mkdir()
    path = data_dir / DATABASE
    shutil.copy(FIXTURE / DATABASE, path)
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {LATEST + 1}")
    return path


def test_a_database_from_a_newer_release_is_refused_naming_the_file(tmp_path: Path) -> None:
    """A layout version past ``LATEST``: opening fails with the file's name, the file untouched."""
    path = newer_database(tmp_path / "data")
    runtime = create_app(receiver_settings(tmp_path / "data")).state.runtime
    with pytest.raises(StorageError, match="newer release") as refused:
        runtime.open()
    assert str(path) in str(refused.value)
    assert not runtime.lock.held
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == LATEST + 1


def test_serve_on_a_database_from_a_newer_release_exits_1_without_a_traceback(
    tmp_path: Path,
) -> None:
    """``serve`` on a newer database says which file and what to do, exit status 1."""
    path = newer_database(tmp_path / "data")
    port = free_port()
    done = subprocess.run(
        [POSTFLOW_COMMAND, "serve", "--port", str(port), "--data-dir", str(path.parent)],
        env=command_env(tmp_path / "config"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert str(path) in done.stderr and "Upgrade" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.anyio
async def test_earlier_notifications_go_to_the_default_destination(old_data_dir: Path) -> None:
    """After layout 4, every notification queued by 0.1.0 is the default destination's."""
    db = SqliteDatabase(old_data_dir / DATABASE)
    db.open()
    try:
        outbox, records = SqliteOutbox(db), SqliteRecords(db)
        pending = await outbox.due(100, "default")
        assert len(pending) == 4 and {n.destination for n in pending} == {"default"}
        assert await outbox.due(100, exclude=["default"]) == []
        commented = await records.find("file-b")
        assert commented is not None and commented.comment_count > 0
        assert commented.open_comments == commented.comment_count
        assert len(commented.comments) == commented.comment_count
    finally:
        await db.close()
