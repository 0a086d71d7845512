"""A PostgreSQL database of its own for each test, on the server CI and the machine provide.

The server is ``POSTFLOW_TEST_POSTGRES`` (default the local one, trust
authentication). Each test creates ``pfw_<random>`` and drops it afterwards.
When no server answers, the test is skipped AND ``conftest.py`` prints a
banner at the end of the run saying how many PostgreSQL tests did not run.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

SERVER_URL = os.environ.get(
    "POSTFLOW_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)
NOT_REACHABLE = "PostgreSQL is not reachable"
_unreachable: list[str] = []


def server_problem() -> str | None:
    """Why the test server cannot be used, or ``None`` when it answers (asked once per run)."""
    if not _unreachable:
        try:
            with psycopg.connect(SERVER_URL, connect_timeout=3, autocommit=True) as conn:
                conn.execute("SELECT 1")
            _unreachable.append("")
        except psycopg.Error as exc:
            _unreachable.append(f"{NOT_REACHABLE} at {SERVER_URL}: {str(exc).strip()[:160]}")
    return _unreachable[0] or None


def require_server() -> None:
    """Skip the calling test, loudly (see conftest), when the server does not answer."""
    problem = server_problem()
    if problem:
        pytest.skip(problem)


def database_url(name: str) -> str:
    """The server URL (``postgresql://...``) pointed at database ``name``."""
    base, _, rest = SERVER_URL.partition("?")
    return f"{base.rsplit('/', 1)[0]}/{name}" + (f"?{rest}" if rest else "")


def create_database() -> str:
    """A new empty database; its URL."""
    require_server()
    name = f"pfw_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(SERVER_URL, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return database_url(name)


def drop_database(url: str) -> None:
    """Drop a database made by ``create_database``, closing whatever still uses it."""
    name = conninfo_to_dict(url)["dbname"]
    assert str(name).startswith("pfw_")
    with psycopg.connect(SERVER_URL, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@contextmanager
def scratch_database() -> Iterator[str]:
    """A database of the test's own, dropped afterwards; yields its URL."""
    url = create_database()
    try:
        yield url
    finally:
        drop_database(url)
