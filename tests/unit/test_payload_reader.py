"""The direct reader of common payloads agrees with the converter on every payload."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

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
RESOURCES = st.one_of(VALUES, st.dictionaries(st.sampled_from(RESOURCE_KEYS), VALUES))
PAYLOADS = st.fixed_dictionaries(
    {},
    optional={
        "event_type": VALUES,
        "type": VALUES,
        "resource": RESOURCES,
        "account": VALUES,
        "workspace": VALUES,
        "project": VALUES,
        "user": VALUES,
        "team": VALUES,
        "extra": VALUES,
    },
)


def converted(payload: dict[str, Any]) -> RawPayload | None:
    """The plain converter's result, or ``None`` when it refuses the payload."""
    try:
        raw: RawPayload = FAST.structure(payload, RawPayload)
    except Exception:
        return None
    return raw


@settings(max_examples=400)
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
def test_the_reader_either_defers_or_agrees_with_the_converter(payload: dict[str, Any]) -> None:
    """Whatever it reads, the converter reads the same; what it cannot read, it leaves."""
    direct = read_plain(payload)
    if direct is not None:
        assert direct == converted(payload)


def test_the_usual_deliveries_are_read_directly() -> None:
    """V4, PostFlow and V2 deliveries as Frame.io and PostFlow send them take the direct path."""
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
    ]
    for payload in usual:
        direct = read_plain(json.loads(json.dumps(payload)))
        assert direct is not None and direct == converted(payload)
