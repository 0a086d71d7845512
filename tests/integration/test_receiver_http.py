"""The receiver on a real uvicorn server: every answer, signatures, endpoints, fuzzing."""

from __future__ import annotations

import concurrent.futures
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from postflow_webhooks.adapters.sqlite import group_commit
from postflow_webhooks.adapters.tracker import FILE_NAME
from postflow_webhooks.app.composition import create_app
from tests.support import (
    hold_write_lock,
    receiver_settings,
    running_server,
    signed_headers,
    wait_for,
)

SECRET = "test-signing-secret"


def payload(file_id: str, event: str = "file.upload.completed", **resource: object) -> bytes:
    """A PostFlow-dialect body."""
    return json.dumps(
        {"event_type": event, "resource": {"id": file_id, "name": f"{file_id}.mov", **resource}}
    ).encode()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A receiver with a signing secret, shared by this module's tests."""
    data = tmp_path_factory.mktemp("receiver")
    settings_ = receiver_settings(data, webhook_secret=SECRET)
    with running_server(create_app(settings_), settings_.port) as url:
        yield url


@pytest.fixture(scope="module")
def client(server: str) -> Iterator[httpx.Client]:
    """An HTTP client for the shared receiver."""
    with httpx.Client(base_url=server, timeout=10) as http:
        yield http


def post(client: httpx.Client, body: bytes, headers: dict[str, str]) -> httpx.Response:
    """POST a raw body to the webhook endpoint."""
    return client.post("/frameio-webhook", content=body, headers=headers)


def test_a_signed_delivery_is_accepted_and_applied(client: httpx.Client) -> None:
    """A signed delivery gets 202 with its id, and the worker applies it."""
    body = payload("accepted-1", status="processing")
    answer = post(client, body, signed_headers(SECRET, body))
    assert answer.status_code == 202
    assert answer.json()["accepted"] is True and len(answer.json()["delivery_id"]) == 32

    def applied() -> bool:
        found = client.get("/uploads/accepted-1")
        return found.status_code == 200 and found.json()["status_label"] == "PROCESSING ⚙️"

    wait_for(applied)


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("tampered", "bad_signature"),
        ("wrong_secret", "bad_signature"),
        ("stale", "stale_timestamp"),
        ("future", "future_timestamp"),
        ("no_signature", "missing_signature"),
        ("no_timestamp", "missing_timestamp"),
        ("bad_prefix", "bad_signature_format"),
        ("reserialised", "bad_signature"),
    ],
)
def test_a_bad_signature_gets_401_with_its_reason(
    client: httpx.Client, case: str, reason: str
) -> None:
    """Every way a signature can be wrong is refused with 401 and says which."""
    body = b'{"event_type": "file.ready",   "resource": {"id": "sig-1"}}'
    now = int(time.time())
    headers = signed_headers(SECRET, body, now)
    sent = body
    if case == "tampered":
        sent = body.replace(b"sig-1", b"sig-2")
    elif case == "wrong_secret":
        headers = signed_headers("another-secret", body, now)
    elif case == "stale":
        headers = signed_headers(SECRET, body, now - 301)
    elif case == "future":
        headers = signed_headers(SECRET, body, now + 301)
    elif case == "no_signature":
        del headers["X-Frameio-Signature"]
    elif case == "no_timestamp":
        del headers["X-Frameio-Request-Timestamp"]
    elif case == "bad_prefix":
        headers["X-Frameio-Signature"] = headers["X-Frameio-Signature"].replace("v0=", "v1=")
    elif case == "reserialised":
        sent = json.dumps(json.loads(body)).encode()
    answer = post(client, sent, headers)
    assert answer.status_code == 401
    assert answer.json()["error"] == "invalid_signature"
    assert answer.json()["reason"] == reason
    assert SECRET not in answer.text


@pytest.mark.parametrize("style", ["lower", "upper", "mixed"])
def test_signature_headers_are_case_insensitive(client: httpx.Client, style: str) -> None:
    """Header names in any case verify (the original PostFlow bug)."""
    body = payload("case-1")
    headers = signed_headers(SECRET, body)
    change = {"lower": str.lower, "upper": str.upper, "mixed": lambda s: s.swapcase()}[style]
    answer = post(client, body, {change(k): v for k, v in headers.items()})
    assert answer.status_code == 202


def test_timestamps_within_five_minutes_are_accepted(client: httpx.Client) -> None:
    """A timestamp 299 s old or ahead is inside the replay window."""
    body = payload("skew-1")
    now = int(time.time())
    assert post(client, body, signed_headers(SECRET, body, now - 290)).status_code == 202
    assert post(client, body, signed_headers(SECRET, body, now + 290)).status_code == 202


def test_a_body_over_one_mebibyte_gets_413(client: httpx.Client) -> None:
    """An oversized body is refused with 413, declared or streamed."""
    big = b'{"event_type": "x", "pad": "' + b"a" * (1024 * 1024) + b'"}'
    assert post(client, big, signed_headers(SECRET, big)).status_code == 413

    def chunks() -> Iterator[bytes]:
        for _ in range(20):
            yield b"a" * 65536

    streamed = client.post(
        "/frameio-webhook", content=chunks(), headers=signed_headers(SECRET, b"")
    )
    assert streamed.status_code == 413
    assert streamed.json()["error"] == "too_large"


def test_a_body_that_is_not_json_gets_400(client: httpx.Client) -> None:
    """Bytes that are not JSON are refused with 400."""
    for body in [b"hello", b"", b"\xff\xfe\x00"]:
        answer = post(client, body, signed_headers(SECRET, body))
        assert answer.status_code == 400, body
        assert answer.json()["error"] == "not_json"


def test_an_unreadable_structure_gets_422_listing_every_problem(client: httpx.Client) -> None:
    """JSON of the wrong shape is refused with 422 and each problem's path."""
    body = b'{"type": 12, "resource": {"id": true, "name": []}}'
    answer = post(client, body, signed_headers(SECRET, body))
    assert answer.status_code == 422
    paths = {p["path"] for p in answer.json()["problems"]}
    assert paths == {"$.type", "$.resource.id", "$.resource.name"}


def test_an_unknown_event_type_is_accepted(client: httpx.Client) -> None:
    """An event nobody handles still gets 202 and is counted."""
    body = b'{"type": "share.viewed", "resource": {"id": "s1", "type": "share"}}'
    assert post(client, body, signed_headers(SECRET, body)).status_code == 202
    wait_for(lambda: client.get("/webhook-status").json()["events_by_type"].get("share.viewed"))


def test_status_endpoints_report_the_seed_stats_and_health(client: httpx.Client) -> None:
    """/health and /webhook-status carry the seed's keys, rejections and verification state."""
    health = client.get("/health")
    assert health.status_code == 200
    assert health.json()["signature_verification"] == "on"
    status = client.get("/webhook-status").json()
    for key in ("total_events", "events_by_type", "webhook_status", "tunnel_info", "last_event"):
        assert key in status
    assert status["webhook_status"] == "active"
    assert status["rejections"].get("bad_signature", 0) >= 1
    described = client.get("/frameio-webhook").json()
    assert described["signature_required"] is True


def test_uploads_are_listed_paginated_and_filtered(client: httpx.Client) -> None:
    """/uploads pages through files and filters by status name, label or Frame.io word."""
    for index in range(3):
        body = payload(f"list-{index}", "file.ready")
        assert post(client, body, signed_headers(SECRET, body)).status_code == 202
    wait_for(lambda: client.get("/uploads", params={"status": "COMPLETED"}).json()["total"] >= 3)
    page = client.get("/uploads", params={"status": "completed", "limit": 2}).json()
    assert len(page["uploads"]) == 2 and page["limit"] == 2
    assert all(u["status"] == "COMPLETED" for u in page["uploads"])
    by_label = client.get("/uploads", params={"status": "COMPLETED 🎉"}).json()
    assert by_label["total"] == page["total"]
    assert client.get("/uploads", params={"status": "bogus"}).status_code == 400
    assert client.get("/uploads", params={"limit": "0"}).status_code == 400
    assert client.get("/uploads/never-seen").status_code == 404


def test_concurrent_deliveries_for_one_file_lose_no_update(client: httpx.Client) -> None:
    """Forty comments sent at once on one file are all counted."""
    import concurrent.futures

    def send(index: int) -> int:
        body = json.dumps(
            {
                "event_type": "comment.created",
                "resource": {"id": "busy-1", "comment_id": f"c{index}", "text": f"note {index}"},
            }
        ).encode()
        return post(client, body, signed_headers(SECRET, body)).status_code

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(send, range(40)))
    assert codes == [202] * 40
    wait_for(lambda: client.get("/uploads/busy-1").json().get("comment_count") == 40)


header_names = st.sampled_from(
    ["X-Frameio-Signature", "X-Frameio-Request-Timestamp", "Content-Type", "X-Other"]
)
header_values = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=80).map(
    str.strip
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)
bodies = st.one_of(
    st.binary(max_size=300),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries(
        {"type": st.text(max_size=20) | st.integers(), "resource": json_values}
    ).map(lambda v: json.dumps(v).encode()),
)


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=bodies, headers=st.dictionaries(header_names, header_values, max_size=4))
def test_fuzzed_requests_never_get_a_server_error(
    client: httpx.Client, body: bytes, headers: dict[str, str]
) -> None:
    """Arbitrary bodies and headers get a 2xx or 4xx, never a 5xx."""
    answer = post(client, body, headers)
    assert answer.status_code < 500, answer.text


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=bodies)
def test_fuzzed_signed_bodies_never_get_a_server_error(client: httpx.Client, body: bytes) -> None:
    """Arbitrary bodies that are correctly signed get 202, 400 or 422, never a 5xx."""
    answer = post(client, body, signed_headers(SECRET, body))
    assert answer.status_code in (202, 400, 422), answer.text


def test_without_a_secret_unsigned_deliveries_are_accepted_and_health_says_so(
    tmp_path: Path,
) -> None:
    """No secret: deliveries are accepted unsigned and /health says verification is off."""
    settings_ = receiver_settings(tmp_path)
    app = create_app(settings_)
    with running_server(app, settings_.port) as url, httpx.Client(base_url=url) as http:
        body = payload("open-1")
        assert http.post("/frameio-webhook", content=body).status_code == 202
        assert http.get("/health").json()["signature_verification"] == "off"


def test_a_write_lock_held_elsewhere_delays_the_delivery_not_the_other_requests(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write lock held elsewhere: other requests are answered; 503 only past the busy timeout."""
    monkeypatch.setattr(group_commit, "BUSY_TIMEOUT_MS", 3000)
    settings_ = receiver_settings(tmp_path)
    database = tmp_path / "postflow.sqlite3"
    with (
        running_server(create_app(settings_), settings_.port) as url,
        httpx.Client(base_url=url, timeout=30) as http,
        concurrent.futures.ThreadPoolExecutor(1) as pool,
    ):

        def deliver(file_id: str) -> httpx.Response:
            return http.post("/frameio-webhook", content=payload(file_id, "file.ready"))

        other = hold_write_lock(database)
        waiting = pool.submit(deliver, "locked-1")
        for _ in range(5):
            assert http.get("/health").status_code == 200
            assert http.get("/uploads").status_code == 200
        assert not waiting.done(), "the delivery was answered while its commit could not happen"
        other.execute("COMMIT")
        assert waiting.result(timeout=10).status_code == 202

        other.execute("BEGIN IMMEDIATE")
        refused = pool.submit(deliver, "locked-2")
        for _ in range(5):
            assert http.get("/health").status_code == 200
        assert not refused.done(), "the delivery was refused before the busy timeout"
        answer = refused.result(timeout=20)
        assert http.get("/webhook-status").status_code == 200
        other.execute("ROLLBACK")
        other.close()
        assert answer.status_code == 503
        assert answer.json()["error"] == "storage_unavailable"
        assert deliver("after-1").status_code == 202
        wait_for(lambda: http.get("/uploads/after-1").status_code == 200)
        assert http.get("/uploads/locked-1").status_code == 200
        assert http.get("/uploads/locked-2").status_code == 404


def test_with_the_json_store_postflows_tracker_file_follows_the_records(tmp_path: Path) -> None:
    """``store=json``: the tracker file is adopted at start, then follows every applied change."""
    tracker_file = tmp_path / FILE_NAME
    tracker_file.write_text(
        json.dumps(
            {
                "version": "1.0",
                "uploads": {
                    "pf-linked": {
                        "filename": "old.mov",
                        "status": "✅ APPROVED",
                        "frameio_data": {"file_id": "known-1"},
                    },
                    "pf-unlinked": {"filename": "json-0.mov", "status": "🔄 UPLOADING", "size": 7},
                },
            }
        ),
        encoding="utf-8",
    )
    settings_ = receiver_settings(tmp_path, store="json")
    with running_server(create_app(settings_), settings_.port) as url:
        adopted = httpx.get(f"{url}/uploads/known-1")
        for index in range(3):
            body = payload(f"json-{index}", "file.ready")
            answer = httpx.post(f"{url}/frameio-webhook", content=body)
            assert answer.status_code == 202

        def linked() -> dict[str, dict[str, object]]:
            uploads = json.loads(tracker_file.read_text(encoding="utf-8"))["uploads"]
            return {
                entry["frameio_data"]["file_id"]: {"key": key, **entry}
                for key, entry in uploads.items()
                if entry.get("frameio_data", {}).get("file_id", "").startswith("json-")
                and entry.get("status") == "🎉 COMPLETED"
            }

        wait_for(lambda: len(linked()) == 3)
        listed = httpx.get(f"{url}/uploads").json()["uploads"]
    assert adopted.status_code == 200 and adopted.json()["status"] == "APPROVED"
    entries = linked()
    assert entries["json-0"]["key"] == "pf-unlinked" and entries["json-0"]["size"] == 7
    assert sorted(item["file_id"] for item in listed) == ["json-0", "json-1", "json-2", "known-1"]
