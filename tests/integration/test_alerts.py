"""Alerts about the receiver itself: one Discord message when an incident starts, one when it ends.

Real receivers, the fake Discord (one for status messages, one for alerts),
the fake cloudflared and the fake Frame.io. Alerts go through the outbox like
status messages, so they survive restarts and Discord outages.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest

from postflow_webhooks.adapters.cloudflared import CloudflaredTunnel, restart_retrying
from postflow_webhooks.adapters.sqlite import DATABASE_NAME
from postflow_webhooks.app.composition import create_app
from postflow_webhooks.app.policies import Policies, exponential
from postflow_webhooks.app.settings import Settings
from postflow_webhooks.app.workflow import RouteSetting
from tests.fakes.cloudflared_helpers import fake_config
from tests.fakes.fake_discord import FakeDiscord
from tests.fakes.fake_frameio import FakeFrameio
from tests.support import quarantine_one, receiver_settings, running_server, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]

QUICK = Policies(notification_outage=exponential(0.05, 0.2))
FAST_ALERTS: dict[str, Any] = {"alert_check_interval": 0.1, "alert_resolve_after": 0.3}


def titles(discord: FakeDiscord) -> list[str]:
    """The titles of the embeds a fake Discord received, in order."""
    return [m["embeds"][0]["title"] for m in discord.messages]


def alert_rows(settings: Settings) -> list[dict[str, Any]]:
    """The alert notifications in the outbox (any state)."""
    db = sqlite3.connect(settings.data_dir / DATABASE_NAME)
    try:
        bodies = [json.loads(b) for (b,) in db.execute("SELECT body FROM notifications")]
    finally:
        db.close()
    return [b for b in bodies if b["kind"] == "alert"]


def open_incidents(url: str) -> set[str]:
    """The reasons of the incidents open now, from /health."""
    return {i["reason"] for i in httpx.get(f"{url}/health").json()["alerts"]["open_incidents"]}


def clear_quarantine(settings: Settings) -> None:
    """Someone dealt with the quarantined delivery."""
    db = sqlite3.connect(settings.data_dir / DATABASE_NAME, isolation_level=None)
    try:
        db.execute("DELETE FROM deliveries WHERE state = 'quarantined'")
    finally:
        db.close()


def test_a_tunnel_outage_makes_one_start_and_one_end_alert_on_the_alerts_channel(
    tmp_path: Path,
) -> None:
    """The fake cloudflared loses the edge for 3 s: one 🚨, one ✅, on the alerts channel only."""
    with FakeDiscord(bucket_limit=50) as status, FakeDiscord(bucket_limit=50) as alerts:
        settings = receiver_settings(
            tmp_path / "data",
            webhook_secret="s",
            discord_webhook_url=status.webhook_url,
            discord_alerts_url=alerts.webhook_url,
            tunnel_down_threshold=0.5,
            **FAST_ALERTS,
        )
        config = fake_config(
            tmp_path,
            local_port=settings.port,
            scenario="drop_connection",
            fake_env={"FAKE_CLOUDFLARED_DROP_AFTER": "1", "FAKE_CLOUDFLARED_DROP_FOR": "3"},
        )
        tunnel = CloudflaredTunnel(config, retrying=restart_retrying(config.restart))
        app = create_app(settings, tunnel=tunnel, policies=QUICK)
        with running_server(app, settings.port) as url:
            wait_for(lambda: len(alerts.messages) >= 1, timeout=20)
            during = httpx.get(f"{url}/health").json()
            wait_for(lambda: len(alerts.messages) >= 2, timeout=20)
            wait_for(lambda: httpx.get(f"{url}/health").json()["status"] == "ok", timeout=10)
    assert titles(alerts) == ["🚨 Tunnel down", "✅ Resolved: Tunnel down"]
    assert status.messages == []
    started = alerts.messages[0]["embeds"][0]
    assert "tunnel" in started["description"] and started["color"] == 0xE74C3C
    assert [i["reason"] for i in during["alerts"]["open_incidents"]] == ["tunnel_down"]
    assert during["alerts"]["channel"] == "alerts"


def test_without_an_alerts_url_alerts_use_the_status_channel_and_survive_a_restart(
    tmp_path: Path,
) -> None:
    """A quarantined delivery: one start alert; a restart does not repeat it; clearing ends it."""
    with FakeDiscord(bucket_limit=50) as status:
        settings = receiver_settings(
            tmp_path / "data", discord_webhook_url=status.webhook_url, **FAST_ALERTS
        )
        with running_server(create_app(settings, policies=QUICK), settings.port):
            quarantine_one(settings, "f1")
            wait_for(lambda: len(status.messages) >= 1, timeout=20)
        with running_server(create_app(settings, policies=QUICK), settings.port) as url:
            wait_for(lambda: open_incidents(url) == {"deliveries_quarantined"})
            assert len(status.messages) == 1, "the open incident is remembered: no second start"
            clear_quarantine(settings)
            wait_for(lambda: len(status.messages) >= 2, timeout=20)
    assert titles(status) == [
        "🚨 A delivery was quarantined",
        "✅ Resolved: A delivery was quarantined",
    ]
    assert [row["event_type"] for row in alert_rows(settings)] == ["alert.started", "alert.ended"]


def test_a_broken_status_channel_is_told_through_the_alerts_channel(tmp_path: Path) -> None:
    """Discord 404s the status webhook: the alerts channel hears it; with no alerts URL, no one."""
    with FakeDiscord(bucket_limit=50) as status, FakeDiscord(bucket_limit=50) as alerts:
        status.delete_webhook()
        separate = receiver_settings(
            tmp_path / "separate",
            discord_webhook_url=status.webhook_url,
            discord_alerts_url=alerts.webhook_url,
            **FAST_ALERTS,
        )
        shared = receiver_settings(
            tmp_path / "shared", discord_webhook_url=status.webhook_url, **FAST_ALERTS
        )
        for settings in (separate, shared):
            with running_server(create_app(settings, policies=QUICK), settings.port) as url:
                body = {"event_type": "file.ready", "resource": {"id": "f1", "name": "a.mov"}}
                assert httpx.post(f"{url}/frameio-webhook", json=body).status_code == 202
                wait_for(lambda u=url: "discord_broken" in open_incidents(u), timeout=20)
                if settings is separate:
                    wait_for(lambda: len(alerts.messages) >= 1, timeout=20)
    assert titles(alerts) == ["🚨 Discord destination broken"]
    assert "404" in alerts.messages[0]["embeds"][0]["description"]
    assert alert_rows(shared) == [], "a broken channel cannot carry news of itself"


def test_refused_frameio_credentials_and_a_dead_letter_are_alerted(tmp_path: Path) -> None:
    """IMS refuses the credentials; Discord refuses one message for good: both alerted once."""
    with (
        FakeFrameio() as fake,
        FakeDiscord(bucket_limit=50) as status,
        FakeDiscord(bucket_limit=50) as alerts,
    ):
        settings = receiver_settings(
            tmp_path / "data",
            frameio_client_id=fake.client_id,
            frameio_client_secret="refused-secret",
            frameio_account_id=fake.account_id,
            frameio_workspace_id=fake.workspace_id,
            frameio_api_base=fake.url,
            frameio_ims_token_url=f"{fake.url}/ims/token/v3",
            discord_webhook_url=status.webhook_url,
            discord_alerts_url=alerts.webhook_url,
            **FAST_ALERTS,
        )
        status.fail_next(400, message="Invalid Form Body", code=50035)
        with running_server(create_app(settings, policies=QUICK), settings.port) as url:
            body = {"event_type": "file.ready", "resource": {"id": "f1", "name": "a.mov"}}
            assert httpx.post(f"{url}/frameio-webhook", json=body).status_code == 202
            wait_for(lambda: len(alerts.messages) >= 2, timeout=20)
    assert sorted(titles(alerts)) == [
        "🚨 A notification was dead-lettered",
        "🚨 Frame.io sign-in failing",
    ]
    signin = next(m for m in alerts.messages if "sign-in" in m["embeds"][0]["title"])
    assert "invalid_client" in signin["embeds"][0]["description"]
    assert "refused-secret" not in json.dumps(alerts.messages)


def test_an_alert_waits_out_a_discord_outage_and_is_sent_once(tmp_path: Path) -> None:
    """The alerts channel answers 503 twice: the start alert still arrives, exactly once."""
    with FakeDiscord(bucket_limit=50) as alerts:
        alerts.fail_next(503, count=2)
        settings = receiver_settings(
            tmp_path / "data", discord_alerts_url=alerts.webhook_url, **FAST_ALERTS
        )
        with running_server(create_app(settings, policies=QUICK), settings.port) as url:
            quarantine_one(settings, "f1")
            wait_for(lambda: len(alerts.messages) >= 1, timeout=20)
            wait_for(lambda: open_incidents(url) == {"deliveries_quarantined"})
            state = httpx.get(f"{url}/health").json()["alerts"]
    assert titles(alerts) == ["🚨 A delivery was quarantined"]
    assert alerts.answers[503] == 2
    assert state["channel"] == "alerts" and state["destination"]["failed"] == 2


def test_with_only_project_routes_alerts_are_tracked_but_not_queued(tmp_path: Path) -> None:
    """No default channel and no alerts URL: an incident opens, but no alert waits forever."""
    with FakeDiscord(bucket_limit=50) as route:
        settings = receiver_settings(
            tmp_path / "data",
            discord_routes=(RouteSetting("Commercial", route.webhook_url),),
            **FAST_ALERTS,
        )
        with running_server(create_app(settings, policies=QUICK), settings.port) as url:
            quarantine_one(settings, "f1")
            wait_for(lambda: open_incidents(url) == {"deliveries_quarantined"})
            channel = httpx.get(f"{url}/health").json()["alerts"]["channel"]
    assert channel == "disabled" and alert_rows(settings) == [] and route.messages == []


def test_a_stale_backlog_makes_one_start_and_one_end_alert(tmp_path: Path) -> None:
    """Frame.io answers 503 so a delivery waits past the threshold: one 🚨; applied: one ✅."""
    with FakeFrameio() as fake, FakeDiscord(bucket_limit=50) as alerts:
        file_id = fake.add_file("SH060_comp_v001.mov", status="transcoded")
        settings = receiver_settings(
            tmp_path / "data",
            **fake.receiver_settings(),
            discord_alerts_url=alerts.webhook_url,
            backlog_age_threshold=1.0,
            **FAST_ALERTS,
        )
        quick = Policies(
            notification_outage=exponential(0.05, 0.2), enrichment=exponential(0.2, 0.5)
        )
        fake.fail_next(100_000, status=503)
        with running_server(create_app(settings, policies=quick), settings.port) as url:
            raw = fake.payload("file.ready", file_id)
            assert httpx.post(f"{url}/frameio-webhook", content=raw).status_code == 202
            wait_for(lambda: len(alerts.messages) >= 1, timeout=30)
            during = open_incidents(url)
            assert httpx.get(f"{url}/health").status_code == 503, "a stale backlog is a problem"
            fake.recover()
            wait_for(lambda: len(alerts.messages) >= 2, timeout=30)
            after = open_incidents(url)
            applied = httpx.get(f"{url}/uploads/{file_id}")
    assert titles(alerts) == [
        "🚨 Deliveries are not being applied",
        "✅ Resolved: Deliveries are not being applied",
    ]
    started = alerts.messages[0]["embeds"][0]["description"]
    assert started.startswith("backlog: the oldest pending delivery arrived") and (
        "(threshold 1 s)" in started
    )
    assert "backlog_stale" in during and "backlog_stale" not in after
    assert applied.status_code == 200 and applied.json()["name"] == "SH060_comp_v001.mov"
    assert [row["event_type"] for row in alert_rows(settings)] == ["alert.started", "alert.ended"]
