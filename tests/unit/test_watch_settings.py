"""The settings of watching it: the status token, the alerts channel, thresholds."""

from __future__ import annotations

from pathlib import Path

import pytest

from postflow_webhooks.app.settings import SettingsError, load_settings


def env(tmp_path: Path, **values: str) -> dict[str, str]:
    """An environment whose config dir is under ``tmp_path``."""
    return {"POSTFLOW_CONFIG_DIR": str(tmp_path / "config"), **values}


def test_defaults_send_alerts_with_a_minute_for_the_tunnel_and_two_for_the_backlog(
    tmp_path: Path,
) -> None:
    """No token, alerts on, 60 s and 120 s thresholds, a look every 5 s, 30 s to resolve."""
    settings = load_settings(env(tmp_path))
    assert settings.status_token is None and settings.discord_alerts_url is None
    assert settings.alerts is True
    assert (settings.tunnel_down_threshold, settings.backlog_age_threshold) == (60.0, 120.0)
    assert (settings.alert_check_interval, settings.alert_resolve_after) == (15.0, 30.0)


def test_the_new_keys_come_from_the_environment(tmp_path: Path) -> None:
    """Each key reads from POSTFLOW_<KEY>."""
    settings = load_settings(
        env(
            tmp_path,
            POSTFLOW_STATUS_TOKEN="tok-123",
            POSTFLOW_DISCORD_ALERTS_URL="https://discord.com/api/v10/webhooks/1/abc",
            POSTFLOW_ALERTS="false",
            POSTFLOW_TUNNEL_DOWN_THRESHOLD="90",
            POSTFLOW_BACKLOG_AGE_THRESHOLD="300",
            POSTFLOW_ALERT_CHECK_INTERVAL="2.5",
            POSTFLOW_ALERT_RESOLVE_AFTER="0",
        )
    )
    assert settings.status_token == "tok-123" and settings.alerts is False
    assert settings.discord_alerts_url == "https://discord.com/api/v10/webhooks/1/abc"
    assert settings.tunnel_down_threshold == 90 and settings.backlog_age_threshold == 300
    assert settings.alert_check_interval == 2.5 and settings.alert_resolve_after == 0


def test_the_token_and_the_alerts_url_never_show(tmp_path: Path) -> None:
    """Secrets stay out of the repr, and a malformed alerts URL is reported without its value."""
    settings = load_settings(
        env(
            tmp_path,
            POSTFLOW_STATUS_TOKEN="tok-123",
            POSTFLOW_DISCORD_ALERTS_URL="https://discord.com/api/v10/webhooks/1/abc",
        )
    )
    assert "tok-123" not in repr(settings) and "abc" not in repr(settings)
    with pytest.raises(SettingsError) as caught:
        load_settings(env(tmp_path, POSTFLOW_DISCORD_ALERTS_URL="ftp://secret-token-here"))
    assert "POSTFLOW_DISCORD_ALERTS_URL" in str(caught.value)
    assert "secret-token-here" not in str(caught.value)


@pytest.mark.parametrize(
    ("variable", "value", "problem"),
    [
        ("POSTFLOW_TUNNEL_DOWN_THRESHOLD", "0", "above 0"),
        ("POSTFLOW_BACKLOG_AGE_THRESHOLD", "soon", "expected a number"),
        ("POSTFLOW_ALERT_RESOLVE_AFTER", "-1", "at least 0"),
        ("POSTFLOW_ALERTS", "maybe", "true or false"),
    ],
)
def test_a_bad_threshold_fails_at_start_naming_the_variable(
    tmp_path: Path, variable: str, value: str, problem: str
) -> None:
    """Each malformed value names its variable and what it expected."""
    with pytest.raises(SettingsError) as caught:
        load_settings(env(tmp_path, **{variable: value}))
    assert variable in str(caught.value) and problem in str(caught.value)
