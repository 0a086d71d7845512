"""/metrics: the Prometheus text of a real receiver, the webhook counted, counters kept."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from postflow_webhooks.adapters.cloudflared import CloudflaredTunnel, restart_retrying
from postflow_webhooks.app.composition import create_app
from postflow_webhooks.app.policies import Policies, exponential
from postflow_webhooks.app.settings import Settings
from tests.fakes.cloudflared_helpers import fake_config
from tests.fakes.fake_discord import FakeDiscord
from tests.fakes.fake_frameio import FakeFrameio
from tests.support import (
    quarantine_one,
    receiver_settings,
    running_server,
    signed_headers,
    wait_for,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]

EDGE = {"Cf-Ray": "8a1b2c3d4e5f6a7b-FRA", "Cf-Connecting-Ip": "203.0.113.9"}
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(url: str, headers: dict[str, str] | None = None) -> Samples:
    """Every sample of /metrics, by name and sorted labels."""
    answer = httpx.get(f"{url}/metrics", headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain; version=")
    samples: Samples = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            samples[sample.name, tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value (0 when absent)."""
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def post(url: str, body: dict[str, Any], secret: str | None = None) -> int:
    """POST a delivery; its status code."""
    raw = json.dumps(body).encode()
    headers = signed_headers(secret, raw) if secret else {"Content-Type": "application/json"}
    return httpx.post(f"{url}/frameio-webhook", content=raw, headers=headers).status_code


def ready(file_id: str, event: str = "file.ready") -> dict[str, Any]:
    """A PostFlow-dialect delivery."""
    return {"event_type": event, "resource": {"id": file_id, "name": f"{file_id}.mov"}}


def test_deliveries_refusals_requests_and_latency_are_counted(tmp_path: Path) -> None:
    """202s by type, refusals by reason, the webhook's requests, the apply latency histogram."""
    settings = receiver_settings(tmp_path / "data", webhook_secret="s3cret")
    with running_server(create_app(settings), settings.port) as url:
        assert post(url, ready("a"), "s3cret") == 202
        assert post(url, ready("b", "file.upload.completed"), "s3cret") == 202
        assert post(url, ready("c", "share.viewed"), "s3cret") == 202
        assert post(url, ready("d")) == 401
        wait_for(lambda: httpx.get(f"{url}/health").json()["backlog"] == 0)
        wait_for(lambda: value(scrape(url), "postflow_apply_latency_seconds_count") == 3)
        samples = scrape(url)
        tunnelled = httpx.get(f"{url}/metrics", headers=EDGE)
    assert value(samples, "postflow_deliveries_received_total", event_type="file.ready") == 1
    assert value(samples, "postflow_deliveries_received_total", event_type="other") == 1
    assert value(samples, "postflow_rejections_total", reason="missing_signature") == 1
    webhook = {"path": "/frameio-webhook", "method": "POST"}
    assert value(samples, "postflow_http_requests_total", **webhook, status="202") == 3
    assert value(samples, "postflow_http_requests_total", **webhook, status="401") == 1
    assert (
        value(
            samples,
            "postflow_deliveries_applied_total",
            event_type="file.ready",
            outcome="status_changed",
        )
        == 1
    )
    assert (
        value(samples, "postflow_deliveries_applied_total", event_type="other", outcome="recorded")
        == 1
    )
    assert value(samples, "postflow_apply_latency_seconds_bucket", le="+Inf") == 3
    assert value(samples, "postflow_backlog") == 0 and value(samples, "postflow_up") == 1
    assert value(samples, "postflow_health_status") == 0
    assert value(samples, "postflow_tracked_files", status="COMPLETED") == 1
    assert tunnelled.status_code == 404, "metrics are local-only like the other status paths"


def test_database_counters_survive_a_restart_and_process_counters_start_over(
    tmp_path: Path,
) -> None:
    """Received and refused counts come back after a restart; request counts start from zero."""
    settings = receiver_settings(tmp_path / "data", webhook_secret="s3cret")
    with running_server(create_app(settings), settings.port) as url:
        assert post(url, ready("a"), "s3cret") == 202
        assert post(url, {"oops": True}, "s3cret") == 422
    with running_server(create_app(settings), settings.port) as url:
        samples = scrape(url)
    assert value(samples, "postflow_deliveries_received_total", event_type="file.ready") == 1
    assert value(samples, "postflow_rejections_total", reason="invalid_payload") == 1
    webhook = {"path": "/frameio-webhook", "method": "POST", "status": "202"}
    assert value(samples, "postflow_http_requests_total", **webhook) == 0


def test_notifications_sent_failed_dead_and_rate_limited_are_counted(tmp_path: Path) -> None:
    """Against the fake Discord: a 429 wait, a 503 retry, a 400 dead letter, the rest sent."""
    quick = Policies(notification_outage=exponential(0.05, 0.2))
    with FakeDiscord(bucket_limit=50) as discord:
        settings = receiver_settings(
            tmp_path / "data", discord_webhook_url=discord.webhook_url, alerts=False
        )
        discord.fail_next(429, retry_after=0.05)
        discord.fail_next(503)
        discord.fail_next(400, message="Invalid Form Body", code=50035)
        with running_server(create_app(settings, policies=quick), settings.port) as url:
            for name in ("n1", "n2", "n3"):
                assert post(url, ready(name)) == 202
            wait_for(lambda: len(discord.messages) >= 2, timeout=20)
            wait_for(lambda: value(scrape(url), "postflow_notifications_total", result="sent") == 2)
            samples = scrape(url)
        with running_server(create_app(settings, policies=quick), settings.port) as url:
            after = scrape(url)
    assert value(samples, "postflow_notifications_total", result="dead_lettered") == 1
    assert value(samples, "postflow_notification_failures_total", channel="status") == 1
    assert value(samples, "postflow_discord_rate_limit_waits_total", channel="status") == 1
    assert value(samples, "postflow_notifications_dead_letters") == 1
    assert value(samples, "postflow_discord_destination_broken", channel="status") == 0
    assert value(after, "postflow_notifications_total", result="sent") == 2, "kept in the database"


@pytest.mark.anyio
async def test_tunnel_and_frameio_figures_are_exposed(tmp_path: Path) -> None:
    """The fake cloudflared up with one URL; the fake Frame.io's calls and sign-in state."""
    with FakeFrameio() as fake:
        file_id = fake.add_file("clip.mov", status="transcoded")
        settings = frameio_settings(fake, tmp_path)
        config = fake_config(tmp_path, local_port=settings.port)
        tunnel = CloudflaredTunnel(config, retrying=restart_retrying(config.restart))
        with running_server(create_app(settings, tunnel=tunnel), settings.port) as url:
            wait_for(lambda: value(scrape(url), "postflow_tunnel_up") == 1, timeout=20)
            wait_for(lambda: fake.webhooks, timeout=20)
            local = f"{url}/frameio-webhook"
            answer = await fake.deliver("file.ready", file_id, resolve=lambda _: local)
            assert answer is not None and answer.status_code == 202
            wait_for(
                lambda: value(scrape(url), "postflow_frameio_api_calls_total", result="ok") >= 2
            )
            samples = scrape(url)
    assert value(samples, "postflow_tunnel_url_changes_total") == 1
    assert value(samples, "postflow_tunnel_restarts_total") == 0
    assert value(samples, "postflow_frameio_signin", state="ok") == 1
    assert value(samples, "postflow_frameio_signin", state="refused") == 0
    assert value(samples, "postflow_frameio_token_requests_total", result="granted") == 1


def test_with_public_status_and_a_token_metrics_answer_the_tunnel_only_with_the_token(
    tmp_path: Path,
) -> None:
    """Through the tunnel: 401 without the token, 200 with ``Authorization: Bearer``."""
    settings = receiver_settings(
        tmp_path / "data", public_status=True, status_token="t0ken-for-prometheus"
    )
    with running_server(create_app(settings), settings.port) as url:
        refused = httpx.get(f"{url}/metrics", headers=EDGE)
        wrong = httpx.get(f"{url}/metrics", headers={**EDGE, "Authorization": "Bearer nope"})
        samples = scrape(url, {**EDGE, "Authorization": "Bearer t0ken-for-prometheus"})
    assert refused.status_code == 401 and refused.json()["error"] == "status_token_required"
    assert wrong.status_code == 401
    assert value(samples, "postflow_up") == 1


def frameio_settings(fake: FakeFrameio, tmp_path: Path) -> Settings:
    """Receiver settings whose Frame.io API is the fake (a secret, so the tunnel may open)."""
    return receiver_settings(
        tmp_path / "data",
        **fake.receiver_settings(),
        webhook_secret=None,
        allow_insecure_public=True,
    )


def test_a_failing_frameio_shows_as_server_errors_a_deferral_and_an_aging_backlog(
    tmp_path: Path,
) -> None:
    """Frame.io answers 503: server_error calls, one deferred delivery, oldest age above 0; then 0."""
    quick = Policies(enrichment=exponential(0.2, 0.5))
    with FakeFrameio() as fake:
        file_id = fake.add_file("clip.mov", status="transcoded")
        settings = frameio_settings(fake, tmp_path)
        fake.fail_next(100_000, status=503)
        with running_server(create_app(settings, policies=quick), settings.port) as url:
            idle = scrape(url)
            raw = fake.payload("file.ready", file_id)
            assert httpx.post(f"{url}/frameio-webhook", content=raw).status_code == 202
            wait_for(lambda: value(scrape(url), "postflow_deliveries_deferred") == 1, timeout=20)
            first = scrape(url)
            wait_for(
                lambda: (
                    value(scrape(url), "postflow_backlog_oldest_age_seconds")
                    > value(first, "postflow_backlog_oldest_age_seconds")
                )
            )
            quarantine_one(settings)
            wait_for(lambda: value(scrape(url), "postflow_quarantined_deliveries") == 1)
            during = scrape(url)
            fake.recover()
            wait_for(lambda: value(scrape(url), "postflow_backlog") == 0, timeout=20)
            after = scrape(url)
    assert value(idle, "postflow_backlog_oldest_age_seconds") == 0
    assert value(idle, "postflow_quarantined_deliveries") == 0
    assert value(first, "postflow_backlog_oldest_age_seconds") > 0
    assert value(during, "postflow_backlog") == 1
    assert value(during, "postflow_frameio_api_calls_total", result="server_error") >= 1
    assert value(during, "postflow_frameio_api_calls_total", result="ok") == 0
    assert value(during, "postflow_frameio_signin", state="ok") == 1, "IMS itself still answers"
    assert value(after, "postflow_backlog_oldest_age_seconds") == 0
    assert value(after, "postflow_deliveries_deferred") == 0
    assert value(after, "postflow_quarantined_deliveries") == 1, "set aside until replayed"
    assert value(after, "postflow_frameio_api_calls_total", result="ok") >= 1
    assert (
        value(
            after,
            "postflow_deliveries_applied_total",
            event_type="file.ready",
            outcome="status_changed",
        )
        == 1
    )
