"""Settings of the shared store: the PostgreSQL URL, its secrecy, and what cannot go with it."""

from __future__ import annotations

from pathlib import Path

import pytest

from postflow_webhooks.adapters.postgres import PostgresDatabase, redact
from postflow_webhooks.app.settings import Settings, SettingsError, load_settings
from tests.unit.test_settings import env, write

URL = "postgresql://pfw:hunter2@db.example:6543/postflow"


def test_the_database_url_is_read_from_env_file_and_flag_and_never_shown(tmp_path: Path) -> None:
    """The URL comes from any source, the flag winning; repr and the label hide the password."""
    write(tmp_path / "config" / "receiver.json", {"store": "postgres", "database_url": URL})
    settings = load_settings(env(tmp_path))
    assert (settings.store, settings.database_url) == ("postgres", URL)
    from_env = load_settings(env(tmp_path, POSTFLOW_DATABASE_URL=URL.replace("6543", "5432")))
    assert from_env.database_url == URL.replace("6543", "5432")
    flagged = load_settings(env(tmp_path), {"database_url": URL.replace("postflow", "other")})
    assert flagged.database_url == URL.replace("postflow", "other")
    assert "hunter2" not in repr(settings)
    database = PostgresDatabase(URL)
    assert database.label == "postgresql://pfw@db.example:6543/postflow" == redact(URL)
    assert "hunter2" not in repr(database)


def test_a_malformed_database_url_fails_without_echoing_it(tmp_path: Path) -> None:
    """A value that is not a postgresql:// URL names the variable, not the value."""
    with pytest.raises(SettingsError) as raised:
        load_settings(env(tmp_path, POSTFLOW_DATABASE_URL="mysql://root:s3cr3t@db/x"))
    assert "POSTFLOW_DATABASE_URL" in str(raised.value)
    assert "s3cr3t" not in str(raised.value) and "not shown" in str(raised.value)


def test_the_postgres_store_without_a_url_names_the_setting(tmp_path: Path) -> None:
    """store=postgres and no URL fails at start, naming every way to give one."""
    with pytest.raises(SettingsError) as raised:
        load_settings(env(tmp_path, POSTFLOW_STORE="postgres"))
    assert raised.value.key == "database_url"
    assert "POSTFLOW_DATABASE_URL" in str(raised.value) and "--database-url" in str(raised.value)


def test_a_quick_tunnel_is_refused_with_a_shared_store(tmp_path: Path) -> None:
    """A quick tunnel per receiver would give each its own URL: refused, naming the fix."""
    values = {"POSTFLOW_STORE": "postgres", "POSTFLOW_DATABASE_URL": URL}
    with pytest.raises(SettingsError) as raised:
        load_settings(env(tmp_path, POSTFLOW_TUNNEL="quick", **values))
    message = str(raised.value)
    assert raised.value.key == "tunnel"
    assert "its own random URL" in message and "POSTFLOW_TUNNEL=named" in message
    assert "hunter2" not in message
    named = load_settings(env(tmp_path, POSTFLOW_TUNNEL="named", **values))
    assert named.tunnel == "named"
    assert Settings(store="sqlite", tunnel="quick").tunnel == "quick"
