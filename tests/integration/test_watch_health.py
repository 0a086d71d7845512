"""/health tells the truth about every dependency; /livez and /readyz for orchestrators.

Real receivers on loopback, the fake Frame.io (which can refuse IMS
credentials or fail its API), the fake cloudflared, and a second SQLite
connection holding the write lock as another program would.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from postflow_webhooks import FrameIOWebhookManager
from postflow_webhooks.adapters.cloudflared import CloudflaredTunnel, restart_retrying
from postflow_webhooks.adapters.sqlite import DATABASE_NAME
from postflow_webhooks.app.composition import create_app
from postflow_webhooks.app.settings import Settings
from tests.fakes.cloudflared_helpers import Waits, fake_config
from tests.fakes.fake_frameio import FakeFrameio
from tests.support import hold_write_lock, receiver_settings, running_server, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]


def frameio_settings(fake: FakeFrameio, tmp_path: Path, **extra: Any) -> Settings:
    """Receiver settings whose Frame.io API is the fake."""
    return receiver_settings(tmp_path / "data", **{**fake.receiver_settings(), **extra})


def health(url: str) -> tuple[int, dict[str, Any]]:
    """/health's status code and body."""
    answer = httpx.get(f"{url}/health", timeout=10)
    return answer.status_code, answer.json()


def reasons(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The findings of a /health body, by reason."""
    return {r["reason"]: r for r in body["reasons"]}


def until_reason(url: str, reason: str, timeout: float = 20.0) -> dict[str, Any]:
    """Poll /health until ``reason`` is among its findings; that body."""
    found: dict[str, Any] = {}

    def seen() -> bool:
        found.update(health(url)[1])
        return reason in reasons(found)

    wait_for(seen, timeout=timeout, every=0.1)
    return found


def send_v4(url: str, fake: FakeFrameio, file_id: str) -> None:
    """An unsigned V4 IDs-only delivery (no secret is configured here)."""
    answer = httpx.post(f"{url}/frameio-webhook", content=fake.payload("file.ready", file_id))
    assert answer.status_code == 202, answer.text


def test_refused_frameio_credentials_make_the_receiver_unhealthy_and_say_why(
    tmp_path: Path,
) -> None:
    """IMS answers 401 invalid_client: 503 naming the refusal and the fix; deferrals say since when."""
    with FakeFrameio() as fake:
        file_id = fake.add_file("refused.mov", status="transcoded")
        settings = frameio_settings(fake, tmp_path, frameio_client_secret="not-the-secret")
        with running_server(create_app(settings), settings.port) as url:
            body = until_reason(url, "frameio_signin_refused")
            send_v4(url, fake, file_id)
            body = until_reason(url, "deliveries_deferred")
            code, _ = health(url)
            status = httpx.get(f"{url}/webhook-status").json()
            ready = httpx.get(f"{url}/readyz")
            live = httpx.get(f"{url}/livez")
    assert code == 503 and body["status"] == "unhealthy"
    refused = reasons(body)["frameio_signin_refused"]
    assert refused["severity"] == "problem" and "invalid_client" in refused["message"]
    assert "client_secret" in refused["message"] and refused["since"] is not None
    assert any("sign-in refused" in p for p in body["problems"])
    deferred = reasons(body)["deliveries_deferred"]
    assert deferred["severity"] == "warning" and deferred["since"] is not None
    assert body["deferred"]["count"] == 1 and body["frameio"]["signin"] == "refused"
    assert status["webhook_status"] == "unhealthy"
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    assert live.status_code == 200 and live.json() == {"status": "alive"}
    assert fake.client_secret not in str(body)


def test_a_failing_frameio_api_is_a_warning_that_clears_when_it_recovers(tmp_path: Path) -> None:
    """API 503s: 200 degraded with frameio_api_failing and deferrals; ok again after recovery."""
    with FakeFrameio() as fake:
        file_id = fake.add_file("outage.mov", status="transcoded")
        settings = frameio_settings(fake, tmp_path)
        with running_server(create_app(settings), settings.port) as url:
            fake.fail_next(10_000, 503)
            send_v4(url, fake, file_id)
            until_reason(url, "frameio_api_failing")
            body = until_reason(url, "deliveries_deferred")
            code, _ = health(url)
            fake.recover()
            wait_for(lambda: health(url)[1]["status"] == "ok", timeout=30, every=0.2)
    assert code == 200 and body["status"] == "degraded"
    failing = reasons(body)["frameio_api_failing"]
    assert failing["severity"] == "warning" and "503" in failing["message"]
    assert "deliveries_deferred" in reasons(body)


def test_a_backlog_older_than_its_threshold_is_a_problem(tmp_path: Path) -> None:
    """Deliveries held by an API outage past backlog_age_threshold: 503 backlog_stale."""
    with FakeFrameio() as fake:
        file_id = fake.add_file("late.mov", status="transcoded")
        settings = frameio_settings(fake, tmp_path, backlog_age_threshold=0.5)
        with running_server(create_app(settings), settings.port) as url:
            fake.fail_next(10_000, 503)
            send_v4(url, fake, file_id)
            body = until_reason(url, "backlog_stale")
            code, _ = health(url)
    stale = reasons(body)["backlog_stale"]
    assert code == 503 and stale["severity"] == "problem"
    assert "threshold 0.5 s" in stale["message"] and body["backlog_oldest_age_s"] > 0.5


def test_a_tunnel_down_past_its_threshold_is_a_problem(tmp_path: Path) -> None:
    """The fake cloudflared never reaches the edge: 503 tunnel_down after the threshold."""
    settings = receiver_settings(tmp_path / "data", webhook_secret="s", tunnel_down_threshold=0.5)
    config = fake_config(
        tmp_path, local_port=settings.port, scenario="edge_unreachable", ready_timeout=1.0
    )
    tunnel = CloudflaredTunnel(config, retrying=restart_retrying(config.restart, sleep=Waits()))
    with running_server(create_app(settings, tunnel=tunnel), settings.port) as url:
        body = until_reason(url, "tunnel_down")
        code, _ = health(url)
        ready = httpx.get(f"{url}/readyz").status_code
    down = reasons(body)["tunnel_down"]
    assert code == 503 and down["severity"] == "problem" and down["since"] is not None
    assert "Frame.io cannot reach the receiver" in down["message"]
    assert ready == 200, "deliveries can still be accepted locally"


def test_a_public_url_that_cannot_be_registered_is_a_problem(tmp_path: Path) -> None:
    """Frame.io refuses to point our webhook at the tunnel (unknown workspace): 503, and why."""
    with FakeFrameio() as fake:
        settings = frameio_settings(fake, tmp_path, frameio_workspace_id="ws-missing")
        config = fake_config(tmp_path, local_port=settings.port)
        tunnel = CloudflaredTunnel(config, retrying=restart_retrying(config.restart))
        app = create_app(settings, tunnel=tunnel)
        with running_server(app, settings.port) as url:
            body = until_reason(url, "public_url_not_registered")
            code, _ = health(url)
    finding = reasons(body)["public_url_not_registered"]
    assert code == 503 and finding["severity"] == "problem"
    assert "trycloudflare.com/frameio-webhook" in finding["message"] and "404" in finding["message"]


def test_a_database_that_takes_no_write_is_a_problem_and_not_ready(tmp_path: Path) -> None:
    """Another program holds the write lock: store_not_writable, /readyz 503; then it recovers."""
    settings = receiver_settings(tmp_path / "data")
    with running_server(create_app(settings), settings.port) as url:
        assert health(url)[0] == 200
        other = hold_write_lock(settings.data_dir / DATABASE_NAME)
        try:
            time.sleep(2.1)  # let the next write probe start, then wait on the lock
            body = until_reason(url, "store_not_writable", timeout=15)
            code, _ = health(url)
            ready = httpx.get(f"{url}/readyz")
        finally:
            other.execute("ROLLBACK")
            other.close()
        wait_for(lambda: health(url)[1]["status"] == "ok", timeout=20, every=0.2)
        ready_again = httpx.get(f"{url}/readyz").status_code
    finding = reasons(body)["store_not_writable"]
    assert code == 503 and finding["severity"] == "problem"
    assert "has not accepted a write" in finding["message"] and body["store"]["writable"] is False
    assert ready.status_code == 503 and ready.json()["status"] == "not_ready"
    assert [r["reason"] for r in ready.json()["reasons"]] == ["store_not_writable"]
    assert ready_again == 200


def test_quarantine_and_dead_letters_are_warnings(tmp_path: Path) -> None:
    """A quarantined delivery and a dead letter in the database: 200 degraded, both named."""
    settings = receiver_settings(tmp_path / "data")
    with running_server(create_app(settings), settings.port) as url:
        db = sqlite3.connect(settings.data_dir / DATABASE_NAME, isolation_level=None)
        try:
            db.execute(
                "INSERT INTO deliveries (delivery_id, received_at, event_type, file_id, body, "
                "state, last_error) VALUES ('bad', 0, 'file.ready', 'f1', x'7b', 'quarantined', "
                "'unreadable delivery')"
            )
            db.execute(
                "INSERT INTO notifications (file_id, state, body, created_at, reason) "
                "VALUES ('f1', 'dead', '{}', 0, '400 Invalid Form Body')"
            )
        finally:
            db.close()
        body = until_reason(url, "notifications_dead_lettered")
        code, _ = health(url)
    assert code == 200 and body["status"] == "degraded"
    assert reasons(body)["deliveries_quarantined"]["message"].startswith("quarantine: 1 delivery")
    assert "1 message dead-lettered" in reasons(body)["notifications_dead_lettered"]["message"]


def test_the_facade_starts_a_receiver_that_is_ready_though_unhealthy(tmp_path: Path) -> None:
    """PostFlow's facade waits for /readyz: a refused Frame.io sign-in does not stop the start."""
    with FakeFrameio() as fake:
        settings = frameio_settings(fake, tmp_path, frameio_client_secret="not-the-secret")
        manager = FrameIOWebhookManager(
            use_cloudflare_tunnel=False, settings=settings, start_timeout=15
        )
        try:
            started = manager.start_webhook_server()
            body = until_reason(settings.local_url, "frameio_signin_refused")
        finally:
            manager.stop()
    assert started is True, manager.last_error
    assert body["status"] == "unhealthy"
