"""The status page over HTTP: served from the package, read-only, its data, who may see it."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

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

pytestmark = [pytest.mark.slow, pytest.mark.timeout(60)]

EDGE = {"Cf-Ray": "8a1b2c3d4e5f6a7b-FRA", "Cf-Connecting-Ip": "203.0.113.9"}
SVG_NAMESPACE = "http://www.w3.org/2000/svg"
TOKEN = "correct-horse-battery-staple-42"


def deliver(url: str, file_id: str, name: str, event: str, **resource: Any) -> None:
    """An unsigned PostFlow-dialect delivery (no secret configured)."""
    body = {"event_type": event, "resource": {"id": file_id, "name": name, **resource}}
    assert httpx.post(f"{url}/frameio-webhook", json=body).status_code == 202


def settle(url: str) -> None:
    """Wait until every delivery is applied."""
    wait_for(lambda: httpx.get(f"{url}/health").json()["backlog"] == 0)


def test_the_page_and_its_assets_ship_in_the_package_and_load_nothing_from_elsewhere(
    tmp_path: Path,
) -> None:
    """/ and /ui/static/*: our own bytes, a CSP allowing only 'self', no outside URL in them."""
    settings = receiver_settings(tmp_path / "data")
    with running_server(create_app(settings), settings.port) as url:
        page = httpx.get(f"{url}/")
        script = httpx.get(f"{url}/ui/static/app.js")
        style = httpx.get(f"{url}/ui/static/app.css")
        missing = httpx.get(f"{url}/ui/static/other.js")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert (
        "default-src 'none'" in csp and "script-src 'self'" in csp and "connect-src 'self'" in csp
    )
    assert script.headers["content-type"].startswith("text/javascript")
    assert style.headers["content-type"].startswith("text/css")
    assert missing.status_code == 404
    for text in (page.text, script.text.replace(SVG_NAMESPACE, ""), style.text):
        assert not re.search(r"https?://", text), "no asset from the internet"
    assert set(re.findall(r'(?:src|href)="([^"]+)"', page.text)) == {
        "/ui/static/app.css",
        "/ui/static/app.js",
        "data:,",
        "#files-heading",
    }


def test_the_overview_says_health_backlog_statuses_and_the_last_hour(tmp_path: Path) -> None:
    """/ui/api/overview: the verdict, counts by status, deliveries and refusals in the chart."""
    settings = receiver_settings(tmp_path / "data")
    with running_server(create_app(settings), settings.port) as url:
        deliver(url, "f1", "SH010_comp_v001.mov", "file.ready")
        deliver(url, "f2", "SH020_comp_v003.mov", "review.status.changed", review_status="approved")
        assert httpx.post(f"{url}/frameio-webhook", content=b"not json").status_code == 400
        settle(url)
        overview = httpx.get(f"{url}/ui/api/overview").json()
    assert overview["health"] == {"status": "ok", "reasons": []}
    counts = {s["name"]: s["count"] for s in overview["statuses"]}
    assert counts["COMPLETED"] == 1 and counts["APPROVED"] == 1 and counts["FAILED"] == 0
    assert overview["files"]["total"] == 2 and overview["files"]["revision"] >= 2
    assert overview["deliveries"]["total"] == 2 and overview["deliveries"]["rejected_total"] == 1
    hour = overview["deliveries"]["last_hour"]
    assert len(hour) == 60 and sum(m["accepted"] for m in hour) == 2
    assert sum(m["refused"] for m in hour) == 1
    assert overview["tunnel"]["state"] == "off" and overview["frameio"]["configured"] is False
    assert overview["backlog"]["pending"] == 0 and overview["incidents"] == []


def test_files_are_filtered_searched_paged_and_newest_first(tmp_path: Path) -> None:
    """status=, q= (name or id, LIKE wildcards literal), offset/limit; bad values are 400s."""
    settings = receiver_settings(tmp_path / "data")
    with running_server(create_app(settings), settings.port) as url:
        for index in range(5):
            deliver(url, f"id-{index}", f"SH0{index}0_comp.mov", "file.ready")
        deliver(url, "id-x", "100%_final.mov", "review.status.changed", review_status="rejected")
        settle(url)
        api = f"{url}/ui/api/files"
        everything = httpx.get(api).json()
        shot = httpx.get(api, params={"q": "sh020"}).json()
        by_id = httpx.get(api, params={"q": "id-4"}).json()
        literal = httpx.get(api, params={"q": "0%_"}).json()
        rejected = httpx.get(api, params={"status": "REJECTED"}).json()
        second = httpx.get(api, params={"limit": 2, "offset": 2}).json()
        bad_status = httpx.get(api, params={"status": "bogus"})
        bad_limit = httpx.get(api, params={"limit": "0"})
        long_query = httpx.get(api, params={"q": "x" * 201})
        one = httpx.get(f"{url}/ui/api/files/id-2").json()
        unknown = httpx.get(f"{url}/ui/api/files/nope")
    names = [f["name"] for f in everything["files"]]
    assert everything["total"] == 6 and names[0] == "100%_final.mov"
    assert [f["name"] for f in shot["files"]] == ["SH020_comp.mov"]
    assert [f["file_id"] for f in by_id["files"]] == ["id-4"]
    assert [f["name"] for f in literal["files"]] == ["100%_final.mov"]
    assert [f["status"] for f in rejected["files"]] == ["REJECTED"]
    assert second["total"] == 6 and [f["name"] for f in second["files"]] == names[2:4]
    assert bad_status.status_code == 400 and "REJECTED" in bad_status.json()["detail"]
    assert bad_limit.status_code == 400 and bad_limit.json()["error"] == "bad_limit"
    assert long_query.status_code == 400 and long_query.json()["error"] == "bad_q"
    assert one["name"] == "SH020_comp.mov" and one["history"][-1]["new_status"] == "COMPLETED 🎉"
    assert unknown.status_code == 404


def test_through_the_tunnel_the_page_needs_public_status_and_the_token(tmp_path: Path) -> None:
    """Off: 404. On without a token: 403 naming the setting. On with one: token or cookie only."""
    closed = receiver_settings(tmp_path / "closed")
    untokened = receiver_settings(tmp_path / "untokened", public_status=True)
    with running_server(create_app(closed), closed.port) as url:
        assert httpx.get(f"{url}/", headers=EDGE).status_code == 404
        assert httpx.get(f"{url}/ui/api/overview", headers=EDGE).status_code == 404
        assert httpx.get(f"{url}/").status_code == 200, "local requests need no token"
    with running_server(create_app(untokened), untokened.port) as url:
        refused = httpx.get(f"{url}/", headers=EDGE)
        json_path = httpx.get(f"{url}/uploads", headers=EDGE)
        bare_health = httpx.get(f"{url}/health", headers=EDGE).json()
    assert refused.status_code == 403 and "POSTFLOW_STATUS_TOKEN" in refused.json()["detail"]
    assert json_path.status_code == 403, "without a token no status path is served publicly"
    assert set(bare_health) == {"status"}, "the tunnel's /health is the bare verdict"


def test_the_token_opens_the_page_by_header_or_by_the_cookie_of_the_sign_in_form(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Bearer header, or /ui/login's cookie (HttpOnly, Secure, SameSite, not the token itself)."""
    caplog.set_level(logging.DEBUG)
    settings = receiver_settings(tmp_path / "data", public_status=True, status_token=TOKEN)
    with running_server(create_app(settings), settings.port) as url:
        edge = httpx.Client(base_url=url, headers=EDGE, follow_redirects=False)
        first = edge.get("/")
        form = edge.get("/ui/login")
        api = edge.get("/ui/api/overview")
        uploads = edge.get("/uploads")
        bare = edge.get("/health").json()
        wrong = edge.post("/ui/login", data={"token": "guess"})
        right = edge.post("/ui/login", data={"token": TOKEN})
        cookie = right.cookies.get("postflow_status")
        with_cookie = edge.get("/ui/api/overview", headers={"Cookie": f"postflow_status={cookie}"})
        forged = edge.get("/ui/api/overview", headers={"Cookie": "postflow_status=" + "0" * 64})
        bearer = {"Authorization": f"Bearer {TOKEN}"}
        with_header = edge.get("/", headers=bearer)
        full = edge.get("/health", headers=bearer).json()
        edge.close()
    assert first.status_code == 303 and first.headers["location"] == "/ui/login"
    assert form.status_code == 200 and 'type="password"' in form.text and "<label" in form.text
    assert api.status_code == 401 and uploads.status_code == 401
    assert bare == {"status": "ok"}
    assert wrong.status_code == 401 and "not the status access token" in wrong.text
    assert right.status_code == 303 and right.headers["location"] == "/"
    set_cookie = right.headers["set-cookie"].lower()
    assert "httponly" in set_cookie and "secure" in set_cookie and "samesite=strict" in set_cookie
    assert cookie and TOKEN not in cookie
    assert with_cookie.status_code == 200 and "health" in with_cookie.json()
    assert forged.status_code == 401
    assert with_header.status_code == 200 and "<title>PostFlow webhooks</title>" in with_header.text
    assert "reasons" in full
    assert TOKEN not in caplog.text and TOKEN not in repr(settings)
    assert TOKEN not in json.dumps(full)


def comment(url: str, file_id: str, action: str, comment_id: str, **extra: Any) -> None:
    """A PostFlow-dialect ``comment.<action>`` delivery about ``comment_id`` on ``file_id``."""
    deliver(url, file_id, f"{file_id}.mov", f"comment.{action}", comment_id=comment_id, **extra)


def test_file_rows_carry_version_comment_count_and_last_change(tmp_path: Path) -> None:
    """A new version and two comments show in the row; updated_at moves with the last change."""
    settings = receiver_settings(tmp_path / "data")
    with running_server(create_app(settings), settings.port) as url:
        deliver(url, "f1", "SH010.mov", "file.ready")
        deliver(url, "f2", "SH020.mov", "file.ready")
        settle(url)
        first = {f["file_id"]: f for f in httpx.get(f"{url}/ui/api/files").json()["files"]}
        deliver(url, "f1", "SH010.mov", "file.versioned")
        comment(url, "f1", "created", "c1", text="Too dark", author="Ana")
        comment(url, "f1", "created", "c2", text="Fix the flicker", author="Bo")
        settle(url)
        later = httpx.get(f"{url}/ui/api/files").json()["files"]
    rows = {f["file_id"]: f for f in later}
    assert first["f1"]["version"] == 1 and first["f1"]["comment_count"] == 0
    assert rows["f1"]["version"] == 2 and rows["f1"]["comment_count"] == 2
    assert rows["f2"]["version"] == 1 and rows["f2"]["comment_count"] == 0
    assert rows["f1"]["updated_at"] > first["f1"]["updated_at"], "the last change moved"
    assert rows["f2"]["updated_at"] == first["f2"]["updated_at"], "an untouched file did not"
    assert [f["file_id"] for f in later] == ["f1", "f2"], "newest change first"


def test_the_timeline_lists_every_comment_with_its_thread_and_state(tmp_path: Path) -> None:
    """Threads and replies, open or resolved, edited text; a deleted thread leaves with its replies."""
    settings = receiver_settings(tmp_path / "data")
    with running_server(create_app(settings), settings.port) as url:
        deliver(url, "f1", "SH010.mov", "file.ready")
        comment(url, "f1", "created", "c1", text="Too dark", author="Ana")
        comment(url, "f1", "created", "r1", text="Agreed", author="Bo", parent_id="c1")
        comment(url, "f1", "created", "c2", text="Flicker at 12s", author="Cy")
        comment(url, "f1", "created", "c3", text="Wrong logo", author="Di")
        comment(url, "f1", "completed", "c2")
        comment(url, "f1", "updated", "c1", text="Much too dark")
        comment(url, "f1", "deleted", "c3")
        settle(url)
        timeline = httpx.get(f"{url}/ui/api/files/f1").json()
    shown = [
        (c["id"], c["thread"], c["state"], c["text"], c["author"]) for c in timeline["comments"]
    ]
    assert shown == [
        ("c1", None, "open", "Much too dark", "Ana"),
        ("r1", "c1", "open", "Agreed", "Bo"),
        ("c2", None, "resolved", "Flicker at 12s", "Cy"),
    ]
    assert all(c["at"] for c in timeline["comments"])
    assert timeline["comment_count"] == 3 and timeline["open_comments"] == 1


def test_the_overview_names_tunnel_frameio_discord_quarantine_and_dead_letters(
    tmp_path: Path,
) -> None:
    """Real values at a glance: the fake cloudflared's URL, the fake Frame.io, the fake Discord."""
    with FakeFrameio() as fake, FakeDiscord(bucket_limit=50) as discord:
        settings = receiver_settings(
            tmp_path / "data",
            **fake.receiver_settings(),
            discord_webhook_url=discord.webhook_url,
            allow_insecure_public=True,
            alerts=False,
        )
        config = fake_config(tmp_path, local_port=settings.port)
        tunnel = CloudflaredTunnel(config, retrying=restart_retrying(config.restart))
        discord.fail_next(400, message="Invalid Form Body", code=50035)
        with running_server(create_app(settings, tunnel=tunnel), settings.port) as url:
            wait_for(lambda: registration(url)["registered_url"], timeout=20)
            (hook,) = fake.webhooks.values()
            signed_delivery(url, hook["secret"], "f1")
            quarantine_one(settings)
            wait_for(lambda: overview(url)["dead_letters"] == 1, timeout=20)
            glance = overview(url)
            discord.delete_webhook()
            signed_delivery(url, hook["secret"], "f2")
            wait_for(lambda: overview(url)["discord"]["status"]["destination_broken"], timeout=20)
            broken = overview(url)["discord"]["status"]
    tunnel_info = glance["tunnel"]
    public = tunnel_info["public_url"]
    assert tunnel_info["state"] == "ready" and tunnel_info["ready"] is True
    assert re.fullmatch(r"https://[a-z-]+\.trycloudflare\.com", public), public
    assert tunnel_info["webhook_url"] == f"{public}/frameio-webhook"
    frameio = glance["frameio"]
    assert frameio["configured"] is True and frameio["signin"] == "ok"
    assert frameio["last_ok_at"] is not None and frameio["failing_since"] is None
    assert frameio["registration"]["registered_url"] == f"{public}/frameio-webhook"
    assert frameio["registration"]["webhook_id"] == hook["id"] and hook["url"] == public + (
        "/frameio-webhook"
    )
    assert glance["signature_verification"] == "on", "the registered webhook's secret is in force"
    status = glance["discord"]["status"]
    assert status["destination"] == "ok" and status["destination_broken"] is False
    assert status["dead_lettered"] == 1 and "400 Invalid Form Body" in status["last_error"]
    assert glance["quarantined"] == 1 and glance["dead_letters"] == 1
    reasons = {r["reason"] for r in glance["health"]["reasons"]}
    assert {"deliveries_quarantined", "notifications_dead_lettered"} <= reasons
    assert broken["destination_broken"] is True and "404" in (broken["destination_reason"] or "")


def overview(url: str) -> dict[str, Any]:
    """/ui/api/overview's JSON."""
    answer: dict[str, Any] = httpx.get(f"{url}/ui/api/overview").json()
    return answer


def registration(url: str) -> dict[str, Any]:
    """The overview's Frame.io webhook registration."""
    found: dict[str, Any] = overview(url)["frameio"]["registration"]
    return found


def signed_delivery(url: str, secret: str, file_id: str) -> None:
    """A PostFlow-dialect file.ready, signed with the registered webhook's secret."""
    body = {"event_type": "file.ready", "resource": {"id": file_id, "name": f"{file_id}.mov"}}
    raw = json.dumps(body).encode()
    answer = httpx.post(f"{url}/frameio-webhook", content=raw, headers=signed_headers(secret, raw))
    assert answer.status_code == 202, answer.text


def frameio_settings(fake: FakeFrameio, data_dir: Path, **overrides: Any) -> Settings:
    """A receiver whose Frame.io API is the fake (no tunnel, so no registered secret)."""
    return receiver_settings(
        data_dir,
        **fake.receiver_settings(),
        **overrides,
    )


def test_the_timeline_says_what_waits_for_frameio_and_why(tmp_path: Path) -> None:
    """Frame.io answers 503: the file's deliveries wait, with the error; then they are applied."""
    quick = Policies(enrichment=exponential(0.2, 0.5))
    with FakeFrameio() as fake:
        file_id = fake.add_file("SH050_comp_v001.mov", status="transcoded")
        settings = frameio_settings(fake, tmp_path / "data")
        fake.fail_next(100_000, status=503)
        with running_server(create_app(settings, policies=quick), settings.port) as url:
            raw = fake.payload("file.ready", file_id)
            assert httpx.post(f"{url}/frameio-webhook", content=raw).status_code == 202

            def waiting() -> dict[str, Any]:
                found: dict[str, Any] = httpx.get(f"{url}/ui/api/files/{file_id}").json()
                return found

            wait_for(lambda: httpx.get(f"{url}/ui/api/files/{file_id}").status_code == 200)
            wait_for(lambda: waiting()["pending_enrichment"][0]["attempts"] >= 1, timeout=20)
            during = waiting()
            fake.recover()
            wait_for(lambda: waiting().get("tracked") is True, timeout=20)
            after = waiting()
    assert during["tracked"] is False and during["backlog"] == 1
    (pending,) = during["pending_enrichment"]
    assert pending["event_type"] == "file.ready" and pending["file_id"] == file_id
    assert "HTTP 503" in pending["last_error"] and file_id in pending["last_error"]
    assert pending["next_attempt_at"] > pending["received_at"]
    assert after["pending_enrichment"] == [] and after["backlog"] == 0
    assert after["name"] == "SH050_comp_v001.mov", "the name came from Frame.io once it answered"
    assert after["history"][-1]["event_type"] == "file.ready"
