"""Settings: every source in precedence order, and every way a value can be wrong."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from postflow_webhooks.app.settings import Settings, SettingsError, load_settings
from postflow_webhooks.domain.statuses import PostflowStatus


def write(path: Path, data: object) -> None:
    """Write JSON (or raw text) to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")


def env(tmp_path: Path, **values: str) -> dict[str, str]:
    """An environment whose config dir is under ``tmp_path``."""
    return {"POSTFLOW_CONFIG_DIR": str(tmp_path / "config"), **values}


def test_without_any_file_the_embedded_default_applies(tmp_path: Path) -> None:
    """No config file and no variable: SQLite under ./data on 127.0.0.1:8080, no tunnel."""
    settings = load_settings(env(tmp_path))
    assert (settings.host, settings.port, settings.store, settings.tunnel) == (
        "127.0.0.1",
        8080,
        "sqlite",
        "off",
    )
    assert settings.data_dir == Path("data") and settings.webhook_secret is None
    assert settings.discord_statuses == tuple(PostflowStatus)


def test_each_source_overrides_the_one_below(tmp_path: Path) -> None:
    """frameio_config.json < its receiver section < receiver.json < environment < flags."""
    config = tmp_path / "config"
    write(
        config / "frameio_config.json",
        {
            "client_id": "cid",
            "webhook_secret": "from-seed-file",
            "receiver": {"port": 9001, "store": "json", "log_format": "json"},
        },
    )
    write(config / "receiver.json", {"port": 9002, "retention_days": 3})
    settings = load_settings(env(tmp_path, POSTFLOW_PORT="9003"), {"host": "0.0.0.0"})
    assert settings.frameio_client_id == "cid"
    assert settings.webhook_secret == "from-seed-file"
    assert settings.store == "json" and settings.log_format == "json"
    assert settings.retention_days == 3
    assert settings.port == 9003
    assert settings.host == "0.0.0.0"
    flagged = load_settings(env(tmp_path, POSTFLOW_PORT="9003"), {"port": 9004})
    assert flagged.port == 9004


def test_tunnel_token_falls_back_to_cloudflareds_own_variable(tmp_path: Path) -> None:
    """TUNNEL_TOKEN is read when POSTFLOW_TUNNEL_TOKEN is not set."""
    settings = load_settings(env(tmp_path, TUNNEL_TOKEN="tok"))
    assert settings.tunnel_token == "tok"


@pytest.mark.parametrize(
    ("variable", "value", "fragment"),
    [
        ("POSTFLOW_PORT", "eighty", "POSTFLOW_PORT: port: expected a whole number"),
        ("POSTFLOW_PORT", "70000", "from 1 to 65535"),
        ("POSTFLOW_STORE", "mysql", "expected one of sqlite, json, postgres"),
        ("POSTFLOW_TUNNEL", "always", "expected one of off, quick, named"),
        ("POSTFLOW_DISCORD_COMMENTS", "maybe", "expected true or false"),
        ("POSTFLOW_DISCORD_STATUSES", "DONE", "unknown status 'DONE'"),
        ("POSTFLOW_RETENTION_DAYS", "-1", "above 0"),
        ("POSTFLOW_LOG_LEVEL", "LOUD", "DEBUG, INFO"),
    ],
)
def test_a_malformed_variable_fails_naming_it(
    tmp_path: Path, variable: str, value: str, fragment: str
) -> None:
    """A bad environment value fails at start, naming the variable and the problem."""
    with pytest.raises(SettingsError) as raised:
        load_settings(env(tmp_path, **{variable: value}))
    assert variable in str(raised.value)
    assert fragment in str(raised.value)


def test_broken_config_files_fail_naming_the_file(tmp_path: Path) -> None:
    """Invalid JSON, a non-object and an unknown key each name the file (and line or key)."""
    config = tmp_path / "config"
    write(config / "receiver.json", '{"port": 80,,}')
    with pytest.raises(SettingsError, match=r"receiver\.json.*line 1"):
        load_settings(env(tmp_path))
    write(config / "receiver.json", "[1, 2]")
    with pytest.raises(SettingsError, match="expected a JSON object"):
        load_settings(env(tmp_path))
    write(config / "receiver.json", {"prot": 80})
    with pytest.raises(SettingsError, match="prot: unknown key"):
        load_settings(env(tmp_path))
    write(config / "receiver.json", {"port": "x"})
    with pytest.raises(SettingsError, match=r"receiver\.json: port"):
        load_settings(env(tmp_path))


def test_secrets_never_appear_in_repr_or_errors(tmp_path: Path) -> None:
    """Secrets are kept out of repr, and a malformed one is not echoed."""
    settings = Settings(
        webhook_secret="s3cret-value",
        discord_webhook_url="https://discord.com/api/webhooks/1/tok3n",
        frameio_client_secret="cl1ent",
        tunnel_token="tunn3l",
    )
    text = repr(settings)
    for secret in ("s3cret-value", "tok3n", "cl1ent", "tunn3l"):
        assert secret not in text
    write(tmp_path / "config" / "receiver.json", {"webhook_secret": 12345})
    with pytest.raises(SettingsError) as raised:
        load_settings(env(tmp_path))
    assert "12345" not in str(raised.value) and "not shown" in str(raised.value)


def test_urls_are_checked_and_a_bad_secret_url_is_not_echoed(tmp_path: Path) -> None:
    """A Discord URL that is not http(s) fails at start without printing it."""
    with pytest.raises(SettingsError) as raised:
        load_settings(env(tmp_path, POSTFLOW_DISCORD_WEBHOOK_URL="discord-hook-token-123"))
    assert "POSTFLOW_DISCORD_WEBHOOK_URL" in str(raised.value)
    assert "token-123" not in str(raised.value)
    with pytest.raises(SettingsError, match="POSTFLOW_FRAMEIO_API_BASE"):
        load_settings(env(tmp_path, POSTFLOW_FRAMEIO_API_BASE="api.frame.io"))


def test_discord_statuses_accept_all_none_names_and_labels(tmp_path: Path) -> None:
    """'none' announces nothing, 'all' everything, and names or labels pick statuses."""
    assert load_settings(env(tmp_path, POSTFLOW_DISCORD_STATUSES="none")).discord_statuses == ()
    assert load_settings(env(tmp_path, POSTFLOW_DISCORD_STATUSES="all")).discord_statuses == tuple(
        PostflowStatus
    )
    picked = load_settings(env(tmp_path, POSTFLOW_DISCORD_STATUSES="approved, REJECTED 🚫"))
    assert picked.discord_statuses == (PostflowStatus.APPROVED, PostflowStatus.REJECTED)


def test_worker_process_is_retired_not_fatal(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Release 0.1.0's worker_process key is ignored with a warning naming it, so upgrades start."""
    assert not hasattr(Settings(), "worker_process")
    settings = load_settings(env(tmp_path, POSTFLOW_WORKER_PROCESS="false"))
    assert settings == load_settings(env(tmp_path))
    write(tmp_path / "config" / "receiver.json", {"worker_process": True, "port": 8181})
    with caplog.at_level("WARNING", logger="postflow_webhooks.settings"):
        upgraded = load_settings(env(tmp_path))
    assert upgraded.port == 8181
    assert "receiver.json: worker_process is ignored" in caplog.text
    write(tmp_path / "config" / "receiver.json", {"worker_proces": True})
    with pytest.raises(SettingsError, match="worker_proces: unknown key"):
        load_settings(env(tmp_path))
