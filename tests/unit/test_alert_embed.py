"""Alerts on Discord: a red embed when an incident starts, a green one when it ends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from postflow_webhooks.adapters.discord.embed import (
    ALERT_COLOUR,
    RESOLVED_COLOUR,
    build_message,
    embed_length,
)
from postflow_webhooks.domain.alerts import Alert, AlertState
from postflow_webhooks.service.alerts import alert_notification

T0 = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def test_a_started_alert_is_red_and_says_what_and_since_when() -> None:
    """Title, the finding's words, the start time and the reason."""
    alert = Alert("tunnel_down", AlertState.STARTED, "Tunnel down", "tunnel: failed (x)", T0)
    embed = build_message(alert_notification(alert, T0))["embeds"][0]
    assert embed["color"] == ALERT_COLOUR and embed["title"] == "🚨 Tunnel down"
    assert embed["description"] == "tunnel: failed (x)"
    fields = {f["name"]: f["value"] for f in embed["fields"]}
    assert fields == {"Since": "2026-11-29T12:00:00+00:00", "Reason": "tunnel_down"}


def test_an_ended_alert_is_green_and_says_how_long_it_lasted() -> None:
    """Resolved, with the duration in minutes."""
    alert = Alert(
        "tunnel_down", AlertState.ENDED, "Tunnel down", "d", T0, T0 + timedelta(minutes=12)
    )
    embed = build_message(alert_notification(alert, T0))["embeds"][0]
    assert embed["color"] == RESOLVED_COLOUR and embed["title"].startswith("✅ Resolved: ")
    assert {f["name"]: f["value"] for f in embed["fields"]}["Lasted"] == "12.0 min"


def test_an_alert_with_huge_words_still_fits_discord() -> None:
    """A very long detail is cut to fit the embed limits."""
    alert = Alert("x", AlertState.STARTED, "T" * 1000, "d" * 10_000, T0)
    embed = build_message(alert_notification(alert, T0))["embeds"][0]
    assert embed_length(embed) <= 6000 and len(embed["title"]) <= 256
