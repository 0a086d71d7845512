"""``doctor``'s database line, on SQLite and on PostgreSQL, through the real command."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psycopg
import pytest

from postflow_webhooks.adapters.postgres import PostgresDatabase
from postflow_webhooks.adapters.postgres.schema import LATEST as PG_LATEST
from postflow_webhooks.adapters.sqlite import SqliteDatabase
from postflow_webhooks.adapters.sqlite.schema import LATEST as SQLITE_LATEST
from tests.integration.test_cli import cli, cli_env
from tests.postgres import scratch_database

pytestmark = pytest.mark.slow


def database_line(env: dict[str, str]) -> dict[str, Any]:
    """The ``database`` check of ``doctor --json``."""
    done = cli(env, "doctor", "--json")
    checks = {c["check"]: c for c in json.loads(done.stdout)}
    return dict(checks["database"])


def test_doctor_reads_postgresql_without_changing_it(tmp_path: Path) -> None:
    """Empty, current, newer than the code: each said; nothing is created by doctor."""
    with scratch_database() as url:
        env = cli_env(tmp_path, POSTFLOW_STORE="postgres", POSTFLOW_DATABASE_URL=url)
        empty = database_line(env)
        assert empty["ok"] and "no tables yet" in empty["detail"]
        with psycopg.connect(url) as conn:
            found = conn.execute("SELECT to_regclass('deliveries')").fetchone()
        assert found == (None,), "doctor created nothing"
        PostgresDatabase(url).open()
        current = database_line(env)
        assert current["ok"] and f"(layout version {PG_LATEST})" in current["detail"]
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("UPDATE postflow_schema SET version = %s", (PG_LATEST + 1,))
        newer = database_line(env)
    assert not newer["ok"]
    assert (
        f"layout version {PG_LATEST + 1}; this release knows up to {PG_LATEST}" in newer["detail"]
    )
    assert "upgrade postflow-webhooks" in newer["detail"]


def test_doctor_names_an_unreachable_postgresql_without_its_password(tmp_path: Path) -> None:
    """Nobody listens: the line says where (no password) and what to check."""
    env = cli_env(
        tmp_path,
        POSTFLOW_STORE="postgres",
        POSTFLOW_DATABASE_URL="postgresql://pfw:hunter2@127.0.0.1:1/postflow",
    )
    line = database_line(env)
    assert not line["ok"]
    assert "postgresql://pfw@127.0.0.1:1/postflow" in line["detail"]
    assert "POSTFLOW_DATABASE_URL" in line["detail"] and "hunter2" not in line["detail"]


@pytest.mark.anyio
async def test_doctor_reads_the_sqlite_layout(tmp_path: Path) -> None:
    """No file yet, then the current layout: both fine and said."""
    env = cli_env(tmp_path)
    assert "not created yet" in database_line(env)["detail"]
    db = SqliteDatabase.in_directory(tmp_path / "data")
    db.open()
    await db.close()
    line = database_line(env)
    assert line["ok"] and f"(layout version {SQLITE_LATEST})" in line["detail"]
