"""The one parse path: any decoded JSON gives an event, or problems at JSON paths, never a crash."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from postflow_webhooks.adapters.payload import read_body, read_payload
from postflow_webhooks.domain.errors import NotJsonError, PayloadError
from postflow_webhooks.domain.events import EVENT_KINDS, EventKind, WebhookEvent

# --- any decoded JSON value ----------------------------------------------------------

# Strings a sender (or an attacker) may put anywhere: odd unicode included (lone
# surrogates, which json.loads yields from "\ud800"; zero-width and bidi marks;
# letters whose lowercase is longer; NUL; full-width look-alikes of event names).
ODD_STRINGS = (
    "",
    " ",
    "\t\n",
    "\x00",
    "\ud800",
    "\udfff",
    "\u200b",
    "\u202e",
    "\ufeff",
    "İ",
    "ß",
    "🎬",
    "ＦＩＬＥ.ready",
    "file.ready\u200b",
    " File.Ready ",
    "asset.label.updated",
    "comment.created",
    "Needs Review",
    "approved",
)
texts = st.one_of(
    st.sampled_from(ODD_STRINGS),
    st.sampled_from(sorted(EVENT_KINDS)),
    st.text(alphabet=st.characters(exclude_categories=()), max_size=12),
)
numbers = st.one_of(
    st.integers(),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(),
    st.sampled_from((0, -1, 2**63, 1.5, -0.0, 1e308)),
)
scalars = st.one_of(st.none(), st.booleans(), numbers, texts)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(
            st.one_of(texts, st.sampled_from(("id", "data", "type"))), inner, max_size=3
        ),
    ),
    max_leaves=8,
)

# --- the three dialects' shapes, every field of any type -----------------------------

RESOURCE_KEYS = (
    "id", "file_id", "comment_id", "type", "name", "status", "review_status", "label",
    "version", "text", "comment", "author", "links", "view_url", "download_url",
    "thumbnail_url", "original_url", "unknown_key",
)  # fmt: skip
REF_KEYS = ("account", "workspace", "project", "user", "team")


def shapes(wild: bool) -> st.SearchStrategy[dict[str, Any]]:
    """The three dialects' payloads; ``wild`` lets any field hold any JSON value."""

    def field(plausible: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        return st.one_of(plausible, plausible, json_values) if wild else plausible

    ids = field(st.sampled_from(("f-1", "c-9", 42, "", " ")))
    names = field(st.sampled_from(sorted(EVENT_KINDS)) | texts)
    resources = field(
        st.fixed_dictionaries(
            {},
            optional={
                "id": ids,
                "file_id": ids,
                "comment_id": ids,
                "version": field(st.integers(min_value=1, max_value=5)),
                "author": field(
                    st.one_of(texts, st.fixed_dictionaries({}, optional={"name": texts, "id": ids}))
                ),
                "links": field(st.dictionaries(texts, texts | json_values, max_size=3)),
                **{
                    key: field(texts)
                    for key in RESOURCE_KEYS
                    if key not in ("id", "file_id", "comment_id", "version", "author", "links")
                },
            },
        )
    )
    refs = field(st.fixed_dictionaries({}, optional={"id": ids}))
    postflow = st.fixed_dictionaries(
        {"event_type": names}, optional={"resource": resources, "type": names}
    )
    v4 = st.fixed_dictionaries(
        {"type": names},
        optional={"resource": resources, **{key: refs for key in REF_KEYS if key != "team"}},
    )
    v2 = st.fixed_dictionaries(
        {"type": names},
        optional={"resource": resources, "team": refs, "user": refs, "project": refs},
    )
    return st.one_of(postflow, v4, v2)


dialect_shapes = st.one_of(shapes(wild=False), shapes(wild=True))
payloads = st.one_of(
    json_values,
    dialect_shapes,
    dialect_shapes.map(lambda p: {"data": p}),
    st.fixed_dictionaries({"data": json_values}),
)


def is_wrapper(value: object) -> bool:
    """True when ``value`` is read as a ``{"data": {...}}`` wrapper."""
    return (
        isinstance(value, dict)
        and isinstance(value.get("data"), dict)
        and "type" not in value
        and "event_type" not in value
    )


def check_outcome(value: object, read: Any) -> None:
    """``read`` gives a sound event, or a domain error whose problems all carry a JSON path."""
    try:
        event = read()
    except PayloadError as exc:
        assert exc.problems, "a PayloadError lists at least one problem"
        root = "$.data" if is_wrapper(value) else "$"
        for problem in exc.problems:
            assert problem.path.startswith(root), problem
            assert problem.message, problem
        return
    except NotJsonError as exc:
        assert exc.detail
        return
    assert isinstance(event, WebhookEvent)
    assert event.event_type and event.event_type == event.event_type.strip().lower()
    assert event.kind is EVENT_KINDS.get(event.event_type, EventKind.OTHER)
    if event.kind is not EventKind.OTHER:
        assert event.resource_id is not None or event.file_id is not None


@settings(max_examples=400)
@given(payloads)
@example(None)
@example([])
@example({"data": None})
@example({"data": {"data": {"type": "file.ready", "resource": {"id": "f"}}}})
@example({"type": "file.ready", "resource": None})
@example({"type": "\ud800", "resource": {"id": "\udfff"}})
@example({"type": "file.ready", "resource": {"id": 10**40}})
@example({"type": "file.ready", "resource": {"id": "f", "version": float("nan")}})
@example({"type": "file.ready", "resource": {"id": "f", "links": {"a": [1], "b": "x"}}})
@example({"type": "comment.created", "resource": {"id": "c", "author": {"name": {"x": 1}}}})
def test_any_decoded_json_gives_an_event_or_problems_at_json_paths(value: Any) -> None:
    """read_payload never raises anything but PayloadError, whose paths start at ``$``."""
    check_outcome(value, lambda: read_payload(value))


@settings(max_examples=200)
@given(payloads)
def test_any_json_body_gives_an_event_or_problems_at_json_paths(value: Any) -> None:
    """read_body on the JSON text of any value behaves as read_payload on the value."""
    body = json.dumps(value).encode()
    check_outcome(value, lambda: read_body(body))
    try:
        expected: object = read_payload(json.loads(body))
    except PayloadError as exc:
        expected = exc.problems
    try:
        got: object = read_body(body)
    except PayloadError as exc:
        got = exc.problems
    assert got == expected


@given(
    st.one_of(
        st.binary(max_size=64),
        payloads.map(lambda v: json.dumps(v).encode()).flatmap(
            lambda b: st.integers(0, max(len(b) - 1, 0)).map(lambda cut: b[:cut])
        ),
    )
)
@example(b"")
@example(b"   \n")
@example(b"\xff\xfe{")
@example(b"\xef\xbb\xbf{}")
@example(b"[" * 100_000)
@example(b'{"type": "file.ready", "resource": {"id": 1' + b"0" * 5000 + b"}}")
def test_any_bytes_give_an_event_or_a_domain_error(body: bytes) -> None:
    """Random or truncated bytes never raise anything but NotJsonError or PayloadError."""
    check_outcome(None, lambda: read_body(body))


# --- the problems of typical mistakes --------------------------------------------------


def problems_of(payload: object) -> dict[str, str]:
    """The problems read_payload reports, by JSON path."""
    with pytest.raises(PayloadError) as caught:
        read_payload(payload)
    return {p.path: p.message for p in caught.value.problems}


def test_a_version_sent_as_text_is_reported_at_its_path() -> None:
    """``"version": "2"`` is a problem at ``$.resource.version`` naming integer and string."""
    problems = problems_of({"type": "file.versioned", "resource": {"id": "f", "version": "2"}})
    assert set(problems) == {"$.resource.version"}
    assert "integer" in problems["$.resource.version"]
    assert "string" in problems["$.resource.version"]


@pytest.mark.parametrize("blank", ["", "   "])
def test_an_empty_id_is_reported_at_its_path(blank: str) -> None:
    """An empty or blank resource id is a problem at ``$.resource.id``."""
    problems = problems_of({"type": "file.ready", "resource": {"id": blank}})
    assert set(problems) == {"$.resource.id"}
    assert "non-empty" in problems["$.resource.id"]


@pytest.mark.parametrize(
    "payload",
    [{}, {"resource": {"id": "f"}}, {"type": ""}, {"event_type": None, "resource": {"id": "f"}}],
)
def test_a_missing_event_name_is_reported_at_type(payload: dict[str, Any]) -> None:
    """Without an event name the one problem is at ``$.type``, saying it is required."""
    problems = problems_of(payload)
    assert set(problems) == {"$.type"}
    assert "required" in problems["$.type"]


def test_a_wrapped_payload_reports_paths_inside_data() -> None:
    """Mistakes inside ``{"data": ...}`` are reported at ``$.data.*`` paths."""
    problems = problems_of(
        {"data": {"type": "file.versioned", "resource": {"id": "", "version": "2"}, "user": 3}}
    )
    assert set(problems) == {"$.data.resource.id", "$.data.resource.version", "$.data.user"}
    assert set(problems_of({"data": {"resource": {"id": "f"}}})) == {"$.data.type"}
    assert set(problems_of({"data": {"type": "file.ready"}})) == {"$.data.resource.id"}


def test_a_body_that_is_not_json_is_not_json() -> None:
    """Empty bytes, text and truncated JSON raise NotJsonError, not PayloadError."""
    for body in (b"", b"  ", b"hello", b'{"type": "file.ready"'):
        with pytest.raises(NotJsonError):
            read_body(body)


def test_a_json_body_that_is_not_an_object_is_a_problem_at_the_root() -> None:
    """``[]`` or ``"x"`` is JSON, so it is a PayloadError at ``$``, not NotJsonError."""
    for body in (b"[]", b'"file.ready"', b"3", b"null"):
        with pytest.raises(PayloadError) as caught:
            read_body(body)
        assert [p.path for p in caught.value.problems] == ["$"]


def test_a_usual_delivery_reads_the_same_from_bytes_and_from_json() -> None:
    """read_body and read_payload are one path: the same event for the same delivery."""
    payload = {
        "type": "file.upload.completed",
        "resource": {"id": "f-1", "type": "file"},
        "account": {"id": "acc"},
        "workspace": {"id": "ws"},
        "project": {"id": "proj"},
        "user": {"id": "user"},
    }
    event = read_body(json.dumps(payload).encode())
    assert event == read_payload(payload)
    assert (event.kind, event.file_id, event.account_id) == (
        EventKind.UPLOAD_COMPLETED,
        "f-1",
        "acc",
    )
