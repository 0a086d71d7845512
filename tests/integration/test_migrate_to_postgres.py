"""``migrate --to postgres``: a SQLite data directory moves whole, once, and is refused after."""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import attrs
import psycopg
import pytest

from postflow_webhooks.adapters.postgres import (
    PostgresDatabase,
    PostgresIncidents,
    PostgresJournal,
    PostgresOutbox,
    PostgresWatch,
)
from postflow_webhooks.adapters.sqlite import SqliteDatabase, SqliteJournal, SqliteOutbox
from postflow_webhooks.adapters.sqlite.incidents import SqliteIncidents
from postflow_webhooks.domain.alerts import ALERTS_DESTINATION, Alert, AlertState, Incident
from postflow_webhooks.domain.journal import BatchResult, IncomingDelivery
from postflow_webhooks.domain.records import Notification, NotificationKind
from postflow_webhooks.domain.statuses import PostflowStatus
from postflow_webhooks.service.alerts import alert_notification
from tests.integration.test_migration import FIXTURE, serve_once
from tests.postgres import scratch_database
from tests.support import POSTFLOW_COMMAND, command_env, free_port

pytestmark = pytest.mark.slow
SHARED = ("total_events", "events_by_type", "rejections", "backlog", "quarantined")


def data_dir(tmp_path: Path, name: str) -> Path:
    """A copy of release 0.1.0's data directory (11 deliveries, 3 files, 7 notifications)."""
    data = tmp_path / name
    data.mkdir()
    for path in FIXTURE.glob("*.sqlite3"):
        shutil.copy(path, data / path.name)
    return data


def run(*args: str, env_dir: Path) -> subprocess.CompletedProcess[str]:
    """The real command line, without the developer's own settings."""
    return subprocess.run(
        [POSTFLOW_COMMAND, *args],
        env=command_env(env_dir / "no-config"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def migrate(url: str, data: Path, *more: str, env_dir: Path) -> subprocess.CompletedProcess[str]:
    """``migrate --to postgres`` of ``data`` into ``url``, with ``more`` options."""
    return run(
        "migrate",
        "--to",
        "postgres",
        "--database-url",
        url,
        "--data-dir",
        str(data),
        *more,
        env_dir=env_dir,
    )


def test_migrate_copies_everything_and_the_receiver_then_serves_the_same(tmp_path: Path) -> None:
    """After migrate, PostgreSQL serves what SQLite would have: counters, queue, files, outbox."""
    moved, kept = data_dir(tmp_path, "moved"), data_dir(tmp_path, "kept")
    with scratch_database() as url:
        done = migrate(url, moved, env_dir=tmp_path)
        assert done.returncode == 0, done.stderr
        assert "deliveries     11 (3 pending, 7 processed, 1 quarantined)" in done.stdout
        assert "notifications  7 (1 dead, 4 pending, 2 sent)" in done.stdout
        assert "records        3" in done.stdout
        assert "secret         none" in done.stdout, "the fixture has no stored secret"
        with psycopg.connect(url) as conn:
            seqs = [r[0] for r in conn.execute("SELECT seq FROM deliveries ORDER BY seq")]
            assert len(seqs) == 11
        expected_status, expected_files = serve_once(kept)
        status, files = serve_once(
            moved.parent / "postgres-receiver", store="postgres", database_url=url
        )
        assert {k: status[k] for k in SHARED} == {k: expected_status[k] for k in SHARED}
        assert status["notifications"]["pending"] == expected_status["notifications"]["pending"]
        assert status["notifications"]["dead_letters"] == 1
        assert files == expected_files
        with psycopg.connect(url) as conn:
            newer = conn.execute("SELECT min(seq) FROM deliveries WHERE seq > %s", (max(seqs),))
            assert newer.fetchone() == (None,)
            next_seq = conn.execute("SELECT nextval(pg_get_serial_sequence('deliveries', 'seq'))")
            assert next_seq.fetchone()[0] > max(seqs), "new deliveries number above the copied"

    refused = run("serve", "--port", str(free_port()), "--data-dir", str(moved), env_dir=tmp_path)
    assert refused.returncode == 1
    assert "was moved to PostgreSQL (postgresql://" in refused.stderr
    assert "POSTFLOW_STORE=postgres" in refused.stderr and "Traceback" not in refused.stderr


def test_migrate_refuses_a_non_empty_database_unless_told(tmp_path: Path) -> None:
    """A second copy into a database that holds data is refused (nothing written); --replace works."""
    first, second = data_dir(tmp_path, "first"), data_dir(tmp_path, "second")
    with scratch_database() as url:
        assert migrate(url, first, env_dir=tmp_path).returncode == 0
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("UPDATE counters SET value = 99 WHERE kind = 'total'")
        again = migrate(url, second, env_dir=tmp_path)
        assert again.returncode == 1
        assert "is not empty (11 deliveries" in again.stderr and "--replace" in again.stderr
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT value FROM counters WHERE kind = 'total'").fetchone() == (
                99,
            )
        replaced = migrate(url, second, "--replace", "--json", env_dir=tmp_path)
        assert replaced.returncode == 0, replaced.stderr
        report = json.loads(replaced.stdout)
        assert report["copied"]["deliveries"] == 11 and "@" in report["target"]
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT value FROM counters WHERE kind = 'total'").fetchone() == (
                11,
            )


async def write_todays_directory(data: Path) -> None:
    """A data directory in today's SQLite layout: replay keys, routes, alerts, incidents, counts."""
    db = SqliteDatabase.in_directory(data)
    db.open()
    journal, outbox, incidents = SqliteJournal(db), SqliteOutbox(db), SqliteIncidents(db)
    now = datetime.now(UTC)
    first = IncomingDelivery(
        "first", now, b"{}", "file.versioned", "f1", True, b"\x07" * 32, int(now.timestamp())
    )
    assert await journal.append(first) is None
    assert await journal.append(attrs.evolve(first, delivery_id="again")) == "first"
    routed = Notification(
        kind=NotificationKind.STATUS,
        file_id="f1",
        at=now,
        event_type="file.ready",
        delivery_id="first",
        version=1,
        new_status=PostflowStatus.COMPLETED,
        destination="project:Feature Film",
    )
    plain = attrs.evolve(routed, destination="default", file_id="f2")
    await journal.commit(BatchResult(at=now, notifications=(routed, plain, plain)))
    sent, dead = await outbox.due(10, exclude=["project:Feature Film"])
    assert sent.id is not None and dead.id is not None
    await outbox.mark_sent(sent.id, now)
    await outbox.mark_dead(dead.id, "400 refused", now)
    incident = Incident("tunnel_down", "Tunnel down", "tunnel: failed", now)
    alert = Alert("tunnel_down", AlertState.STARTED, "Tunnel down", "tunnel: failed", now)
    await incidents.record([incident], [], [alert_notification(alert, now, ALERTS_DESTINATION)])
    await db.close()


@pytest.mark.anyio
async def test_a_directory_of_todays_layout_moves_with_its_keys_routes_and_incidents(
    tmp_path: Path,
) -> None:
    """Replay keys, destinations, open incidents and notification totals all arrive in PostgreSQL."""
    data = tmp_path / "today"
    await write_todays_directory(data)
    with scratch_database() as url:
        done = migrate(url, data, env_dir=tmp_path)
        assert done.returncode == 0, done.stderr
        assert "replay keys    1" in done.stdout
        assert "notifications  4 (1 dead, 2 pending, 1 sent)" in done.stdout
        db = PostgresDatabase(url)
        db.open()
        try:
            journal, outbox = PostgresJournal(db), PostgresOutbox(db)
            stats = await journal.stats()
            assert (stats.total_events, stats.duplicates, stats.backlog) == (1, 1, 1)
            stamp = int(datetime.now(UTC).timestamp())
            replayed = IncomingDelivery(
                "later", datetime.now(UTC), b"{}", "file.versioned", "f1", True, b"\x07" * 32, stamp
            )
            with psycopg.connect(url) as conn:
                (kept,) = conn.execute("SELECT timestamp FROM accepted_signatures").fetchone()
            assert await journal.append(attrs.evolve(replayed, timestamp=kept)) == "first"
            routed = await outbox.due(10, "project:Feature Film")
            assert [n.file_id for n in routed] == ["f1"]
            alerts = await outbox.due(10, ALERTS_DESTINATION)
            assert [n.kind for n in alerts] == [NotificationKind.ALERT]
            assert await outbox.due(10, exclude=["project:Feature Film", ALERTS_DESTINATION]) == []
            assert [i.reason for i in await PostgresIncidents(db).open_incidents()] == [
                "tunnel_down"
            ]
            reading = await PostgresWatch(db).reading()
            assert (reading.notifications_sent_total, reading.notifications_dead_total) == (1, 1)
        finally:
            await db.close()


def test_migrate_brings_the_stored_signing_secret_without_showing_it(tmp_path: Path) -> None:
    """The secret ``register`` stored in the directory is in the database, for every receiver."""
    moved = data_dir(tmp_path, "moved")
    secret = "stored-by-register-0123456789"
    (moved / "frameio_webhook_secret").write_text(secret + "\n")
    with scratch_database() as url:
        done = migrate(url, moved, env_dir=tmp_path)
        assert done.returncode == 0, done.stderr
        assert "secret         copied" in done.stdout
        assert secret not in done.stdout + done.stderr
        with psycopg.connect(url) as conn:
            rows = conn.execute("SELECT key, value FROM shared_state").fetchall()
        assert rows == [("webhook_secret", secret)]
