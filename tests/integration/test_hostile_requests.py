"""Hostile requests on a real server: timestamps, query strings, replays, limits, forged logs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from postflow_webhooks.adapters.http.signature import sign
from postflow_webhooks.adapters.memory import FixedClock
from postflow_webhooks.app.composition import create_app
from postflow_webhooks.domain.endpoint import MAX_EVENT_TYPE_LENGTH, MAX_ID_LENGTH
from tests.support import (
    command_env,
    free_port,
    receiver_settings,
    running_server,
    signed_headers,
    start_serve,
    wait_for,
)

SECRET = "hostile-test-secret"


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """A client of a receiver with a signing secret, shared by this module's tests."""
    settings_ = receiver_settings(tmp_path_factory.mktemp("hostile"), webhook_secret=SECRET)
    with (
        running_server(create_app(settings_), settings_.port) as url,
        httpx.Client(base_url=url, timeout=10) as http,
    ):
        yield http


def body_of(file_id: str, event: str = "file.ready", **resource: object) -> bytes:
    """A PostFlow-dialect body."""
    return json.dumps({"event_type": event, "resource": {"id": file_id, **resource}}).encode()


def rejections(client: httpx.Client) -> dict[str, int]:
    """The refusal counters."""
    counted: dict[str, int] = client.get("/webhook-status").json()["rejections"]
    return counted


@pytest.mark.parametrize("stamp", [b"9" * 309, b"1" * 5000, b"\xb2", b"\xb9\xb2\xb3", b"+17000"])
def test_a_malformed_timestamp_is_a_counted_401(client: httpx.Client, stamp: bytes) -> None:
    """Over-long or non-ASCII-digit timestamps: 401 bad_timestamp, counted, no traceback."""
    before = rejections(client).get("bad_timestamp", 0)
    body = body_of("ts-1")
    headers = {"X-Frameio-Request-Timestamp": stamp, "X-Frameio-Signature": b"v0=" + b"0" * 64}
    answer = client.post("/frameio-webhook", content=body, headers=headers)
    assert answer.status_code == 401, answer.text
    assert answer.json()["reason"] == "bad_timestamp"
    assert rejections(client)["bad_timestamp"] == before + 1


@pytest.mark.parametrize(
    ("query", "name"),
    [
        ("offset=99999999999999999999", "offset"),
        ("offset=9223372036854775808", "offset"),
        ("offset=" + "9" * 5000, "offset"),
        ("limit=²", "limit"),
        ("limit=" + "1" * 5000, "limit"),
        ("offset=-1", "offset"),
    ],
)
def test_out_of_range_query_parameters_get_400_naming_them(
    client: httpx.Client, query: str, name: str
) -> None:
    """Huge, negative or non-ASCII numbers in /uploads: 400 naming the parameter."""
    answer = client.get(f"/uploads?{query}")
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"] == f"bad_{name}" and name in answer.json()["detail"]


def test_a_replayed_delivery_changes_nothing(client: httpx.Client) -> None:
    """A captured 'approved' re-posted after 'rejected': 202 duplicate, the file stays REJECTED."""
    approved = body_of("replay-1", "review.status.changed", review_status="approved")
    captured = signed_headers(SECRET, approved)
    first = client.post("/frameio-webhook", content=approved, headers=captured)
    assert first.status_code == 202 and "duplicate" not in first.json()
    rejected = body_of("replay-1", "review.status.changed", review_status="rejected")
    assert client.post(
        "/frameio-webhook", content=rejected, headers=signed_headers(SECRET, rejected)
    ).status_code == 202  # fmt: skip
    wait_for(lambda: client.get("/uploads/replay-1").json().get("status") == "REJECTED")
    before = client.get("/webhook-status").json()
    upper = {**captured, "X-Frameio-Signature": captured["X-Frameio-Signature"].upper()}
    for headers in (captured, upper):
        replay = client.post("/frameio-webhook", content=approved, headers=headers)
        assert replay.status_code == 202
        assert replay.json()["duplicate"] is True
        assert replay.json()["delivery_id"] == first.json()["delivery_id"]
    probe = body_of("replay-probe")
    client.post("/frameio-webhook", content=probe, headers=signed_headers(SECRET, probe))
    wait_for(lambda: client.get("/uploads/replay-probe").status_code == 200)
    record = client.get("/uploads/replay-1").json()
    assert record["status"] == "REJECTED" and len(record["history"]) == 2
    after = client.get("/webhook-status").json()
    assert after["total_events"] == before["total_events"] + 1
    assert after["duplicates"] == before["duplicates"] + 2


def test_a_replayed_versioning_keeps_the_approval(client: httpx.Client) -> None:
    """file.versioned replayed after an approval of the new version clears nothing."""
    versioned = body_of("replay-2", "file.versioned")
    captured = signed_headers(SECRET, versioned)
    assert client.post("/frameio-webhook", content=versioned, headers=captured).status_code == 202
    approved = body_of("replay-2", "review.status.changed", review_status="approved")
    client.post("/frameio-webhook", content=approved, headers=signed_headers(SECRET, approved))
    wait_for(lambda: client.get("/uploads/replay-2").json().get("status") == "APPROVED")
    again = client.post("/frameio-webhook", content=versioned, headers=captured)
    assert again.json()["duplicate"] is True
    probe = body_of("replay-probe-2")
    client.post("/frameio-webhook", content=probe, headers=signed_headers(SECRET, probe))
    wait_for(lambda: client.get("/uploads/replay-probe-2").status_code == 200)
    assert client.get("/uploads/replay-2").json()["status"] == "APPROVED"


def v4_body(file_id: str, event: str) -> bytes:
    """A Frame.io V4 (IDs-only) body."""
    return json.dumps({"type": event, "resource": {"id": file_id, "type": "file"}}).encode()


def test_identical_frameio_bodies_in_one_second_are_two_events(client: httpx.Client) -> None:
    """IDs-only deliveries only make the receiver read Frame.io again: never taken for replays."""
    body = v4_body("same-second-1", "metadata.value.updated")
    headers = signed_headers(SECRET, body)
    answers = [client.post("/frameio-webhook", content=body, headers=headers) for _ in range(2)]
    assert [a.status_code for a in answers] == [202, 202]
    assert all("duplicate" not in a.json() for a in answers)
    assert answers[0].json()["delivery_id"] != answers[1].json()["delivery_id"]


def test_a_replayed_frameio_versioning_is_a_duplicate(client: httpx.Client) -> None:
    """A V4 file.versioned starts a version by itself, so its replay is recognised."""
    body = v4_body("versioned-v4", "file.versioned")
    headers = signed_headers(SECRET, body)
    first = client.post("/frameio-webhook", content=body, headers=headers)
    again = client.post("/frameio-webhook", content=body, headers=headers)
    assert "duplicate" not in first.json() and again.json()["duplicate"] is True


def test_event_types_and_ids_have_documented_limits(client: httpx.Client) -> None:
    """Event types over 128 and ids over 256 characters get 422; at the limit they pass."""
    cases = [
        (body_of("len-1", "x" * MAX_EVENT_TYPE_LENGTH), 202),
        (body_of("len-2", "x" * (MAX_EVENT_TYPE_LENGTH + 1)), 422),
        (body_of("len-3", "x" * (1024 * 1024 - 100)), 422),
        (body_of("i" * MAX_ID_LENGTH), 202),
        (body_of("i" * (MAX_ID_LENGTH + 1)), 422),
    ]
    for body, expected in cases:
        answer = client.post("/frameio-webhook", content=body, headers=signed_headers(SECRET, body))
        assert answer.status_code == expected, answer.text[:300]
        if expected == 422:
            assert "the limit is" in answer.json()["problems"][0]["message"]


def test_webhook_status_lists_a_bounded_number_of_event_types(client: httpx.Client) -> None:
    """Sixty distinct event types: at most 50 named, the rest counted as 'other'."""
    for index in range(60):
        body = body_of(f"kind-{index}", f"custom.kind.{index:02d}")
        client.post("/frameio-webhook", content=body, headers=signed_headers(SECRET, body))
    status = client.get("/webhook-status").json()
    assert len(status["events_by_type"]) == 51 and status["events_by_type"]["other"] >= 10
    assert sum(status["events_by_type"].values()) == status["total_events"]


def test_the_skew_window_is_symmetric_and_inclusive(tmp_path: Path) -> None:
    """Exactly 300 s old or ahead is accepted (whatever the clock's fraction); 301 is refused."""
    now = datetime.now(UTC).replace(microsecond=500_000)
    settings_ = receiver_settings(tmp_path, webhook_secret=SECRET)
    app = create_app(settings_, clock=FixedClock(now))
    with running_server(app, settings_.port) as url, httpx.Client(base_url=url) as http:
        answers = {}
        for offset in (-301, -300, 300, 301):
            body = body_of(f"skew{offset}")
            stamp = str(int(now.timestamp()) + offset)
            headers = {"X-Frameio-Request-Timestamp": stamp}
            headers["X-Frameio-Signature"] = sign(SECRET, stamp, body)
            answer = http.post("/frameio-webhook", content=body, headers=headers)
            answers[offset] = answer.json().get("reason", answer.status_code)
    assert answers == {-301: "stale_timestamp", -300: 202, 300: 202, 301: "future_timestamp"}


def test_a_newline_in_a_file_id_cannot_forge_a_log_line(tmp_path: Path) -> None:
    """The text log escapes control characters taken from a request: one line per delivery."""
    port, log = free_port(), tmp_path / "serve.log"
    env = command_env(tmp_path / "config", POSTFLOW_DATA_DIR=str(tmp_path / "data"))
    process = start_serve(env, port, log=log)
    try:
        forged = "x\n2026-01-01 00:00:00,000 ERROR postflow_webhooks: FORGED\x1b[2J"
        body = body_of(forged)
        answer = httpx.post(f"http://127.0.0.1:{port}/frameio-webhook", content=body)
        assert answer.status_code == 202
        wait_for(lambda: "outcome=" in log.read_text(encoding="utf-8"))
    finally:
        process.terminate()
        process.wait(timeout=30)
    text = log.read_text(encoding="utf-8")
    assert not any(line.startswith("2026-01-01") for line in text.splitlines())
    assert "file=x\\n2026-01-01" in text and "\\x1b[2J" in text and "\x1b" not in text
