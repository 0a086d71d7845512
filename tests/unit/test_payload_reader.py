"""The direct path for common payloads gives the converter's event, or steps aside."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from postflow_webhooks.domain.events import WebhookEvent, _event_from_plain, _event_from_raw
from postflow_webhooks.domain.raw_payload import FAST, RawPayload, read_plain

# JSON values of every kind, including the near-misses the reader must refuse.
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["", " ", "abc", "file-1", "Needs Review"]),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=2), st.dictionaries(st.sampled_from(["id", "x"]), inner)
    ),
    max_leaves=4,
)
RESOURCE_KEYS = [
    "id", "file_id", "comment_id", "type", "name", "status", "review_status", "label",
    "text", "comment", "view_url", "download_url", "thumbnail_url", "original_url",
    "author", "links", "version", "extra",
]  # fmt: skip
# Two kinds of payloads: plain ones (strings, ids, objects of ids, as senders
# send them), which exercise the direct path's rules (dialect, kind, comment,
# label, links), and wild ones (any JSON value anywhere), which it must leave.
WORDS = st.sampled_from(["", " ", "f-1", "comment", "Comment", "approved", "https://x"])
NAMES = st.sampled_from(
    ["file.ready", "asset.label.updated", "comment.created", "asset.ready", "abc", " ", ""]
)
PLAIN_KEYS = [key for key in RESOURCE_KEYS if key not in ("author", "links", "version")]
REF_KEYS = ["account", "workspace", "project", "user", "team"]


PLAIN = st.one_of(st.none(), WORDS)
IDS = st.one_of(st.none(), st.sampled_from(["f-1", "c-9"]))
GOOD_NAMES = st.sampled_from(["file.ready", "asset.label.updated", "comment.created", "abc"])
PLAIN_RESOURCE = st.fixed_dictionaries(
    {"id": IDS},
    optional={
        **{key: PLAIN for key in PLAIN_KEYS if key not in ("id", "file_id", "comment_id")},
        "file_id": IDS,
        "comment_id": IDS,
    },
)
PLAIN_PAYLOADS = st.fixed_dictionaries(
    {},
    optional={
        "event_type": st.one_of(st.none(), GOOD_NAMES),
        "type": GOOD_NAMES,
        "resource": PLAIN_RESOURCE,
        **{key: st.fixed_dictionaries({}, optional={"id": IDS}) for key in REF_KEYS},
    },
)
ANY = st.one_of(WORDS, VALUES)
WILD_PAYLOADS = st.fixed_dictionaries(
    {},
    optional={
        "event_type": st.one_of(NAMES, VALUES),
        "type": st.one_of(NAMES, VALUES),
        "resource": st.one_of(VALUES, st.dictionaries(st.sampled_from(RESOURCE_KEYS), ANY)),
        "extra": VALUES,
        **{
            key: st.one_of(VALUES, st.fixed_dictionaries({}, optional={"id": ANY}))
            for key in REF_KEYS
        },
    },
)
PAYLOADS = st.one_of(PLAIN_PAYLOADS, WILD_PAYLOADS)


def converted(payload: dict[str, Any]) -> WebhookEvent | None:
    """The event the converter's path makes, or ``None`` when it refuses the payload."""
    try:
        raw: RawPayload = FAST.structure(payload, RawPayload)
        return _event_from_raw(raw, "$")
    except Exception:  # the converter refused it, or the payload lacks something
        return None


def direct(payload: dict[str, Any]) -> WebhookEvent | None:
    """The event the direct path makes, or ``None`` when it steps aside."""
    plain = read_plain(payload)
    return _event_from_plain(plain, "$") if plain is not None else None


@settings(max_examples=600)
@given(PAYLOADS)
@example({"type": "file.ready", "resource": {"id": " "}})
@example({"type": "file.ready", "resource": {"id": 7}})
@example({"type": "file.ready", "resource": {"file_id": ""}})
@example({"type": "file.ready", "resource": {"id": "f"}, "user": {"id": " "}})
@example({"type": "file.ready", "resource": {"id": "f"}, "user": {"id": 3}})
@example({"type": True, "resource": {"id": "f"}})
@example({"event_type": "file.ready", "resource": {"id": "f", "name": 1}})
@example({"type": "file.ready", "resource": {"id": "f", "version": 2}})
@example({"type": "file.ready", "resource": ["f"]})
@example({"type": "file.ready", "account": "acc"})
@example({"type": "file.ready"})
@example({"type": " ", "resource": {"id": "f"}})
@example({"type": "comment.created", "resource": {"id": "c", "type": "Comment", "text": ""}})
@example({"type": "file.ready", "resource": {"id": "f", "view_url": "", "download_url": "d"}})
@example({"type": "asset.ready", "resource": {"id": "a"}, "team": {}})
@example({"type": "file.ready", "resource": {"id": "f"}, "team": {"id": "t"}})
@example({"type": "asset.label.updated", "resource": {"id": "a", "label": "approved"}})
def test_the_direct_path_gives_the_converters_event_or_steps_aside(
    payload: dict[str, Any],
) -> None:
    """Whatever event the direct path makes, the converter's path makes the same."""
    event = direct(payload)
    if event is not None:
        assert event == converted(payload)


def test_the_usual_deliveries_take_the_direct_path() -> None:
    """V4, PostFlow, V2 and comment deliveries as they are sent take the direct path."""
    usual = [
        {
            "type": "file.upload.completed",
            "resource": {"id": "f-1", "type": "file"},
            "account": {"id": "acc"},
            "workspace": {"id": "ws"},
            "project": {"id": "proj"},
            "user": {"id": "user"},
        },
        {
            "event_type": "review.status.changed",
            "resource": {"id": "f-2", "review_status": "approved"},
        },
        {"type": "asset.ready", "resource": {"id": "a-1", "type": "asset"}, "team": {"id": "t"}},
        {"type": "comment.created", "resource": {"id": "c-1", "type": "comment"}},
        {"event_type": "file.ready", "resource": {"id": "f-3", "view_url": "https://v"}},
    ]
    for payload in usual:
        event = direct(json.loads(json.dumps(payload)))
        assert event is not None and event == converted(payload)
        assert event == WebhookEvent.from_payload(payload)
