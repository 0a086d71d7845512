"""Poison deliveries on a real server: refused at the door, or quarantined alone; never a halt."""

from __future__ import annotations

import concurrent.futures
import json
import sqlite3
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from starlette.requests import Request
from starlette.responses import Response

from postflow_webhooks.adapters.tracker import FILE_NAME
from postflow_webhooks.app.composition import create_app
from postflow_webhooks.domain.events import EVENT_KINDS
from tests.fakes.fake_frameio import FakeFrameio
from tests.integration.test_frameio_end_to_end import frameio_settings, register_locally
from tests.support import (
    POSTFLOW_COMMAND,
    command_env,
    receiver_settings,
    running_server,
    signed_headers,
    wait_for,
)

SECRET = "poison-test-secret"


STORES = ["sqlite", "json"]


@pytest.fixture(scope="module", params=STORES)
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[httpx.Client, Path, str]]:
    """A receiver with a signing secret, on each store: its client, data directory and store."""
    data = tmp_path_factory.mktemp(f"poison-{request.param}")
    settings_ = receiver_settings(data, webhook_secret=SECRET, store=request.param)
    with (
        running_server(create_app(settings_), settings_.port) as url,
        httpx.Client(base_url=url, timeout=10) as http,
    ):
        yield http, data, request.param


def post(http: httpx.Client, payload: object) -> httpx.Response:
    """POST ``payload`` as JSON (lone surrogates become ``\\ud83d`` escapes), signed."""
    body = json.dumps(payload).encode()
    return http.post("/frameio-webhook", content=body, headers=signed_headers(SECRET, body))


def applied(http: httpx.Client, file_id: str) -> bool:
    """True once the worker has applied a delivery about ``file_id``."""
    return http.get(f"/uploads/{file_id}").status_code == 200


def tracked(data: Path) -> set[str]:
    """The file ids in the JSON tracker file of ``data``; empty while it does not exist."""
    tracker = data / FILE_NAME
    if not tracker.exists():
        return set()
    uploads = json.loads(tracker.read_text(encoding="utf-8"))["uploads"]
    return {entry.get("frameio_data", {}).get("file_id") for entry in uploads.values()}


def written(http: httpx.Client, data: Path, store: str, *file_ids: str) -> bool:
    """True once ``file_ids`` are applied and, with the JSON store, in the tracker file."""
    if not all(applied(http, file_id) for file_id in file_ids):
        return False
    return store != "json" or set(file_ids) <= tracked(data)


def healthy(http: httpx.Client) -> bool:
    """/health is 200 and the JSON tracker (when it is the store) has no error."""
    answer = http.get("/health")
    tracker = answer.json()["store"].get("tracker")
    return answer.status_code == 200 and (tracker is None or tracker["last_error"] is None)


@pytest.mark.parametrize(
    ("payload", "path"),
    [
        ({"event_type": "file.ready", "resource": {"id": "n1", "name": "clip\ud83d.mov"}}, "name"),
        (
            {"event_type": "comment.created", "resource": {"id": "c1", "text": "great \ud83d"}},
            "text",
        ),
        ({"event_type": "file.ready", "resource": {"id": "id\ud83d"}}, "id"),
        ({"event_type": "file.ready\ud83d", "resource": {"id": "t1"}}, "event_type"),
    ],
    ids=["name", "comment", "id", "event_type"],
)
def test_unencodable_text_is_refused_at_the_door_with_its_path(
    served: tuple[httpx.Client, Path, str], payload: dict[str, Any], path: str
) -> None:
    """A lone surrogate anywhere (name, comment, id, event type): 422 naming the JSON path."""
    http, data, store = served
    answer = post(http, payload)
    assert answer.status_code == 422, answer.text
    (problem,) = answer.json()["problems"]
    assert problem["path"].endswith(path) and "lone surrogate U+D83D" in problem["message"]
    follow = f"after-{path}"
    assert post(http, {"event_type": "file.ready", "resource": {"id": follow}}).status_code == 202
    wait_for(lambda: written(http, data, store, follow))
    assert healthy(http)


def test_poison_among_concurrent_deliveries_fails_none_of_them(
    served: tuple[httpx.Client, Path, str],
) -> None:
    """Bad ids and event types sent among 200 valid deliveries: every valid one gets 202."""
    http, data, store = served

    def send(index: int) -> int:
        if index % 10 == 0:
            bad = {"event_type": "file.ready", "resource": {"id": f"bad\ud800{index}"}}
            return post(http, bad).status_code
        return post(
            http, {"event_type": "file.ready", "resource": {"id": f"c-{index}"}}
        ).status_code

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        codes = list(pool.map(send, range(220)))
    assert [c for i, c in enumerate(codes) if i % 10] == [202] * 198
    assert [c for i, c in enumerate(codes) if i % 10 == 0] == [422] * 22
    wait_for(lambda: applied(http, "c-219"))
    valid = {f"c-{i}" for i in range(220) if i % 10}
    wait_for(lambda: store == "sqlite" or valid <= tracked(data), timeout=30)
    assert healthy(http)


def test_a_poison_delivery_already_stored_is_quarantined_alone(
    served: tuple[httpx.Client, Path, str],
) -> None:
    """Bodies an older release accepted (surrogates in name and comment) are set aside, listed."""
    http, data, store = served
    before = http.get("/webhook-status").json()["quarantined"]
    rows = [
        ("stored-ok-1", {"event_type": "file.ready", "resource": {"id": "stored-ok-1"}}),
        ("stored-bad-1", {"event_type": "file.ready", "resource": {"id": "stored-bad-1", "name": "\ud83d"}}),
        ("stored-bad-2", {"event_type": "comment.created", "resource": {"id": "stored-bad-2", "text": "\udfff"}}),
        ("stored-ok-2", {"event_type": "file.ready", "resource": {"id": "stored-ok-2"}}),
    ]  # fmt: skip
    db = sqlite3.connect(data / "postflow.sqlite3")
    with db:
        for file_id, payload in rows:
            db.execute(
                "INSERT INTO deliveries (delivery_id, received_at, event_type, file_id, body) "
                "VALUES (?, 0, ?, ?, ?)",
                (uuid.uuid4().hex, payload["event_type"], file_id, json.dumps(payload).encode()),
            )
    db.close()
    wait_for(lambda: written(http, data, store, "stored-ok-1", "stored-ok-2"))
    wait_for(lambda: http.get("/webhook-status").json()["quarantined"] == before + 2)
    assert healthy(http)
    env = command_env(data / "config", POSTFLOW_DATA_DIR=str(data))
    listed = subprocess.run(
        [POSTFLOW_COMMAND, "replay", "--json"], env=env, capture_output=True, text=True, check=True
    )
    reasons = [q["reason"] for q in json.loads(listed.stdout)["quarantined"]]
    assert sum("lone surrogate" in reason for reason in reasons) == 2


class SurrogateFrameio(FakeFrameio):
    """The fake Frame.io, whose file names may hold a lone surrogate (sent as a JSON escape)."""

    async def _file(self, request: Request) -> Response:
        answer = await super()._file(request)
        body = bytes(answer.body).replace(b"LONE-SURROGATE", b"\\ud83d")
        return Response(body, status_code=answer.status_code, media_type="application/json")


@pytest.mark.anyio
@pytest.mark.parametrize("store", STORES)
async def test_a_record_the_database_cannot_store_quarantines_only_its_delivery(
    tmp_path: Path, store: str
) -> None:
    """A name from the API that cannot be stored: that delivery is quarantined, the next applied."""
    with SurrogateFrameio() as fake:
        poisoned = fake.add_file("clip-LONE-SURROGATE.mov", status="transcoded")
        fine = fake.add_file("fine.mov", status="transcoded")
        settings_ = frameio_settings(fake, tmp_path, store=store)
        await register_locally(settings_)
        with (
            running_server(create_app(settings_), settings_.port) as url,
            httpx.Client(base_url=url) as http,
        ):
            for file_id in (poisoned, fine):
                answer = await fake.deliver("file.ready", file_id)
                assert answer is not None and answer.status_code == 202
            wait_for(lambda: written(http, settings_.data_dir, store, fine), timeout=20)
            wait_for(lambda: http.get("/webhook-status").json()["quarantined"] == 1)
            assert healthy(http)
            assert not applied(http, poisoned) and poisoned not in tracked(settings_.data_dir)


ODD = ["\ud83d", "\udfff", "\n", "\r\n", "\x00", "\x1b[31m", "\u2028", "\x7f", "\u200b"]
odd_text = st.one_of(
    st.sampled_from(ODD),
    st.text(st.characters(exclude_categories=()), max_size=12),
    st.tuples(st.text("abc.", max_size=6), st.sampled_from(ODD), st.text("xyz", max_size=6)).map(
        "".join
    ),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | odd_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(odd_text, inner, max_size=3),
    max_leaves=8,
)
event_names = st.sampled_from(sorted(EVENT_KINDS)) | odd_text
ids = st.text("abcdef0123456789-", min_size=1, max_size=12) | odd_text | st.integers()
texts = odd_text | st.sampled_from(["approved", "needs_review", "ready", "clip.mov"]) | json_values
resources = st.fixed_dictionaries(
    {"id": ids},
    optional={
        **{key: texts for key in ("name", "status", "review_status", "label", "text", "comment")},
        "type": st.sampled_from(["file", "comment"]) | odd_text,
        "file_id": ids,
        "comment_id": ids,
        "author": texts | st.fixed_dictionaries({"name": texts}),
        "links": st.dictionaries(odd_text, texts, max_size=2),
    },
)
payloads = st.one_of(
    st.fixed_dictionaries({"event_type": event_names, "resource": resources}),
    st.fixed_dictionaries(
        {"type": event_names, "resource": resources},
        optional={"account": st.fixed_dictionaries({"id": ids})},
    ),
)
bodies = st.one_of(
    payloads.map(lambda p: json.dumps(p).encode()),
    payloads.map(lambda p: json.dumps({"data": p}).encode()),
    payloads.map(lambda p: json.dumps(p, ensure_ascii=False).encode("utf-8", "surrogatepass")),
    json_values.map(lambda v: json.dumps(v).encode()),
)


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=bodies)
def test_no_body_halts_the_worker_or_gets_a_server_error(
    served: tuple[httpx.Client, Path, str], body: bytes
) -> None:
    """Any JSON, surrogates and control characters in every string: 2xx/4xx, and work goes on."""
    http, data, store = served
    answer = http.post("/frameio-webhook", content=body, headers=signed_headers(SECRET, body))
    assert answer.status_code in (202, 400, 422), answer.text
    event(f"answered {answer.status_code}")
    sentinel = f"sentinel-{uuid.uuid4().hex[:12]}"
    assert post(http, {"type": "file.ready", "resource": {"id": sentinel}}).status_code == 202
    wait_for(lambda: written(http, data, store, sentinel), every=0.05)
    assert healthy(http)
