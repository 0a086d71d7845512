"""``migrate --to postgres``: a SQLite data directory moves whole, once, and is refused after."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import psycopg
import pytest

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


def test_migrate_copies_everything_and_the_receiver_then_serves_the_same(tmp_path: Path) -> None:
    """After migrate, PostgreSQL serves what SQLite would have: counters, queue, files, outbox."""
    moved, kept = data_dir(tmp_path, "moved"), data_dir(tmp_path, "kept")
    with scratch_database() as url:
        done = run(
            "migrate",
            "--to",
            "postgres",
            "--database-url",
            url,
            "--data-dir",
            str(moved),
            env_dir=tmp_path,
        )
        assert done.returncode == 0, done.stderr
        assert "deliveries     11 (3 pending, 7 processed, 1 quarantined)" in done.stdout
        assert "notifications  7 (1 dead, 4 pending, 2 sent)" in done.stdout
        assert "records        3" in done.stdout
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
        assert (
            run(
                "migrate",
                "--to",
                "postgres",
                "--database-url",
                url,
                "--data-dir",
                str(first),
                env_dir=tmp_path,
            ).returncode
            == 0
        )
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("UPDATE counters SET value = 99 WHERE kind = 'total'")
        again = run(
            "migrate",
            "--to",
            "postgres",
            "--database-url",
            url,
            "--data-dir",
            str(second),
            env_dir=tmp_path,
        )
        assert again.returncode == 1
        assert "is not empty (11 deliveries" in again.stderr and "--replace" in again.stderr
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT value FROM counters WHERE kind = 'total'").fetchone() == (
                99,
            )
        replaced = run(
            "migrate",
            "--to",
            "postgres",
            "--database-url",
            url,
            "--data-dir",
            str(second),
            "--replace",
            "--json",
            env_dir=tmp_path,
        )
        assert replaced.returncode == 0, replaced.stderr
        report = json.loads(replaced.stdout)
        assert report["copied"]["deliveries"] == 11 and "@" in report["target"]
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT value FROM counters WHERE kind = 'total'").fetchone() == (
                11,
            )
