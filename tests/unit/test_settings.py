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


# --- the studio's workflow: review field, routes, mentions -----------------------------

SECRET_ROUTE_URL = (
    "https://discord.com/api/v10/webhooks/123456789012345678/t0ken-for-the-film-channel"
)


def test_the_review_field_defaults_to_frameio_status(tmp_path: Path) -> None:
    """Without review settings the mapping is Frame.io's own Status field and options."""
    mapping = load_settings(env(tmp_path)).review_mapping
    assert mapping.field == "Status"
    assert mapping.shown() == {
        "Needs Review": "WAITING_APPROVAL",
        "Approved": "APPROVED",
        "Rejected": "REJECTED",
        "In Progress": None,
    }


@pytest.mark.parametrize("where", ["receiver.json", "frameio_config.json"])
def test_review_field_and_options_come_from_the_config_files(tmp_path: Path, where: str) -> None:
    """review_field and review_options in receiver.json, or the seed file's receiver section."""
    keys = {"review_field": "Review Stage", "review_options": {"Changes Requested": "REJECTED"}}
    write(tmp_path / "config" / where, keys if where == "receiver.json" else {"receiver": keys})
    settings = load_settings(env(tmp_path))
    mapping = settings.review_mapping
    assert mapping.field == "Review Stage"
    assert mapping.shown()["Changes Requested"] == "REJECTED"
    assert mapping.shown()["Approved"] == "APPROVED"


def test_review_settings_come_from_the_environment_as_json(tmp_path: Path) -> None:
    """POSTFLOW_REVIEW_FIELD and POSTFLOW_REVIEW_OPTIONS (JSON) win over the files."""
    write(tmp_path / "config" / "receiver.json", {"review_options": {"Final": "APPROVED"}})
    values = env(
        tmp_path,
        POSTFLOW_REVIEW_FIELD="fd-status",
        POSTFLOW_REVIEW_OPTIONS='{"Final": "rejected", "On Hold": null, "Client OK": "APPROVED ✅"}',
    )
    settings = load_settings(values)
    assert settings.review_field == "fd-status"
    shown = settings.review_mapping.shown()
    assert (shown["Final"], shown["On Hold"], shown["Client OK"]) == ("REJECTED", None, "APPROVED")


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ('{"Final": "DONE"}', ["POSTFLOW_REVIEW_OPTIONS", "'Final'", "unknown status 'DONE'"]),
        (
            '{"Final": "COMPLETED"}',
            ["POSTFLOW_REVIEW_OPTIONS", "COMPLETED is not a review decision"],
        ),
        ('["Final"]', ["POSTFLOW_REVIEW_OPTIONS", "expected an object"]),
        ("{Final: APPROVED}", ["POSTFLOW_REVIEW_OPTIONS", "not valid JSON"]),
        ('{"": "APPROVED"}', ["POSTFLOW_REVIEW_OPTIONS", "option name is empty"]),
    ],
)
def test_bad_review_options_name_the_variable_and_the_option(
    tmp_path: Path, value: str, words: list[str]
) -> None:
    """A malformed mapping stops start-up naming the variable, the option and what to use."""
    with pytest.raises(SettingsError) as caught:
        load_settings(env(tmp_path, POSTFLOW_REVIEW_OPTIONS=value))
    for word in words:
        assert word in str(caught.value)


def test_routes_and_mentions_are_read_and_the_urls_never_shown(tmp_path: Path) -> None:
    """discord_routes and discord_mentions parse; a route's URL never appears in a repr."""
    write(
        tmp_path / "config" / "receiver.json",
        {
            "discord_routes": [
                {
                    "project": "Feature Film",
                    "webhook_url": SECRET_ROUTE_URL,
                    "mentions": {"REJECTED": ["role:111", "<@222>"]},
                }
            ],
            "discord_mentions": {"WAITING_APPROVAL": "<@&333>"},
        },
    )
    settings = load_settings(env(tmp_path))
    (route,) = settings.discord_routes
    assert route.project == "Feature Film" and route.webhook_url == SECRET_ROUTE_URL
    assert [(m.kind.value, m.id) for m in route.mentions[0][1]] == [
        ("role", "111"),
        ("user", "222"),
    ]
    assert [(s.name, m[0].id) for s, m in settings.discord_mentions] == [
        ("WAITING_APPROVAL", "333")
    ]
    assert "t0ken" not in repr(settings)


@pytest.mark.parametrize(
    ("routes", "words"),
    [
        ([{"project": "X"}], ["discord_routes", "[0].webhook_url"]),
        ([{"webhook_url": SECRET_ROUTE_URL}], ["[0].project"]),
        ([{"project": "X", "webhook_url": "ftp://x"}], ["[0].webhook_url"]),
        ([{"project": "X", "webhook_url": SECRET_ROUTE_URL, "channel": 1}], ["[0].channel"]),
        (
            [{"project": "X", "webhook_url": SECRET_ROUTE_URL, "mentions": {"REJECTED": "@here"}}],
            ["[0].mentions.REJECTED", "role:<id>"],
        ),
        (
            [
                {"project": "X", "webhook_url": SECRET_ROUTE_URL},
                {"project": "x", "webhook_url": SECRET_ROUTE_URL},
            ],
            ["[1].project", "has a route already"],
        ),
    ],
)
def test_bad_routes_name_the_route_and_never_echo_a_url(
    tmp_path: Path, routes: list[dict[str, object]], words: list[str]
) -> None:
    """A malformed route names its index and key; the message never contains a token."""
    with pytest.raises(SettingsError) as caught:
        load_settings(env(tmp_path, POSTFLOW_DISCORD_ROUTES=json.dumps(routes)))
    message = str(caught.value)
    assert "t0ken" not in message
    for word in words:
        assert word in message
