"""Properties of the core: idempotence, order independence, no going back, total parsing."""

from __future__ import annotations

import copy
from typing import Any

import attrs
from hypothesis import example, given, settings
from hypothesis import strategies as st

from postflow_webhooks.adapters.payload import read_payload
from postflow_webhooks.domain.errors import PayloadError
from postflow_webhooks.domain.events import WebhookEvent
from postflow_webhooks.domain.records import Enrichment, UploadRecord
from postflow_webhooks.domain.rules import Outcome
from postflow_webhooks.domain.statuses import PostflowStatus
from tests.unit.strategies import (
    any_dialect_payloads,
    apply,
    maybe_wrapped,
    processing_words,
    replay,
    spelled,
    steps,
)

NOTHING = Enrichment()


def v4(event_type: str, file_id: str = "f-1", **resource: Any) -> WebhookEvent:
    """A V4-shaped event about one file."""
    return read_payload(
        {"type": event_type, "resource": {"id": file_id, "type": "file", **resource}}
    )


def postflow(event_type: str, file_id: str = "f-1", **resource: Any) -> WebhookEvent:
    """A PostFlow-dialect event about one file."""
    return read_payload({"event_type": event_type, "resource": {"id": file_id, **resource}})


# --- applying an event twice equals applying it once ---------------------------------


@settings(max_examples=200, deadline=None)
@given(st.lists(steps, max_size=6), steps)
@example([], (v4("file.versioned"), NOTHING))
@example([(v4("file.ready"), NOTHING)], (v4("file.versioned"), NOTHING))
@example([], (postflow("comment.created", text="hi", author="Ana"), NOTHING))
@example([(v4("file.deleted"), NOTHING)], (v4("file.ready"), NOTHING))
def test_applying_an_event_twice_equals_applying_it_once(
    prefix: list[tuple[WebhookEvent, Enrichment]], step: tuple[WebhookEvent, Enrichment]
) -> None:
    """A redelivered event changes nothing and announces nothing the second time."""
    event, enrichment = step
    target = event.file_id or "f-1"
    record = replay(prefix, file_id=target)
    once, _ = apply(record, event, enrichment, n=100)
    twice, second = apply(once, event, enrichment, n=101)
    assert twice == once
    assert second.notifications == ()
    assert second.record is None
    assert second.outcome in (Outcome.UNCHANGED, Outcome.RECORDED, Outcome.IGNORED_DELETED)


# --- any order of the processing events of one version -------------------------------

processing_events = st.one_of(
    st.sampled_from(
        ["file.created", "asset.created", "file.upload.completed", "file.ready", "asset.ready"]
    ).map(v4),
    spelled(processing_words).map(lambda w: postflow("file.status.changed", status=w)),
)


def settled(record: UploadRecord | None) -> tuple[Any, ...] | None:
    """What must not depend on the order: both axes, version, freshness, deletion, status."""
    if record is None:
        return None
    return (
        record.processing,
        record.review,
        record.version,
        record.version_fresh,
        record.deleted,
        record.status,
        record.links,
        record.name,
    )


@settings(max_examples=250, deadline=None)
@given(
    st.lists(steps, max_size=6),
    st.lists(processing_events, min_size=1, max_size=6).flatmap(
        lambda evs: st.tuples(st.just(evs), st.permutations(evs))
    ),
)
@example(
    [],
    (
        [v4("file.ready"), v4("file.upload.completed")],
        [v4("file.upload.completed"), v4("file.ready")],
    ),
)
@example(
    [(v4("file.versioned"), NOTHING)],
    (
        [postflow("file.status.changed", status="failed"), v4("file.ready")],
        [v4("file.ready"), postflow("file.status.changed", status="failed")],
    ),
)
def test_processing_events_of_one_version_commute(
    prefix: list[tuple[WebhookEvent, Enrichment]],
    orders: tuple[list[WebhookEvent], list[WebhookEvent]],
) -> None:
    """Any order of one version's processing events ends in the same state."""
    first, second = orders
    base = replay(prefix)
    results = []
    for order in (first, second):
        record = base
        for n, event in enumerate(order):
            record, _ = apply(record, event, NOTHING, n=50 + n)
        results.append(settled(record))
    assert results[0] == results[1]


# --- COMPLETED never goes back without a new version ---------------------------------


@settings(max_examples=200, deadline=None)
@given(st.lists(steps, max_size=20))
@example(
    [
        (v4("file.ready"), NOTHING),
        (v4("file.upload.completed"), NOTHING),
        (v4("file.created"), NOTHING),
        (postflow("file.status.changed", status="processing"), NOTHING),
        (postflow("file.status.changed", status="failed"), NOTHING),
    ]
)
@example(
    [
        (v4("file.ready"), NOTHING),
        (v4("file.versioned", version=1), NOTHING),
        (v4("file.upload.completed"), NOTHING),
    ]
)
def test_completed_never_goes_back_without_a_new_version(
    sequence: list[tuple[WebhookEvent, Enrichment]],
) -> None:
    """Once COMPLETED, a file's version never displays PROCESSING or UPLOADING again."""
    records: dict[str, UploadRecord] = {}
    completed: set[tuple[str, int]] = set()
    for n, (event, enrichment) in enumerate(sequence):
        if event.file_id is None:
            continue
        record, _ = apply(records.get(event.file_id), event, enrichment, n=n)
        if record is None:
            continue
        records[event.file_id] = record
        key = (record.file_id, record.version)
        if record.status is PostflowStatus.COMPLETED:
            completed.add(key)
        elif record.status in (PostflowStatus.PROCESSING, PostflowStatus.UPLOADING):
            assert key not in completed


# --- parsing never raises anything but PayloadError ----------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)

TOP_KEYS = (
    "type",
    "event_type",
    "resource",
    "account",
    "workspace",
    "project",
    "user",
    "team",
    "data",
)
RESOURCE_KEYS = (
    "id",
    "type",
    "name",
    "status",
    "review_status",
    "label",
    "version",
    "file_id",
    "comment_id",
    "text",
    "comment",
    "author",
    "links",
    "view_url",
    "download_url",
    "thumbnail_url",
    "original_url",
)

# Dicts shaped like payloads (the keys the parser reads) holding any JSON values.
shaped_payloads = st.dictionaries(
    st.sampled_from(TOP_KEYS),
    json_values
    | st.dictionaries(st.sampled_from(RESOURCE_KEYS), json_values, max_size=6)
    | st.sampled_from(("file.ready", "comment.created", "asset.versioned")),
    max_size=6,
)


@st.composite
def damaged_payloads(draw: st.DrawFn) -> Any:
    """A valid payload of some dialect with a few values replaced by arbitrary JSON."""
    payload = copy.deepcopy(draw(any_dialect_payloads))
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        resource = payload.get("resource")
        if isinstance(resource, dict) and draw(st.booleans()):
            resource[draw(st.sampled_from(RESOURCE_KEYS))] = draw(json_values)
        else:
            payload[draw(st.sampled_from(TOP_KEYS))] = draw(json_values)
    return payload


@settings(max_examples=300, deadline=None)
@given(st.one_of(json_values, maybe_wrapped(shaped_payloads), maybe_wrapped(damaged_payloads())))
@example({"resource": {"id": []}})
@example({"data": {"data": {"type": "file.ready"}}})
@example({"type": "comment.created", "resource": {"id": "c", "author": {"name": {}}}})
@example({"type": "file.ready", "resource": {"id": "f", "links": {"a": None}}})
@example({"type": "file.ready", "resource": None})
@example({"type": "file.ready", "resource": {"id": 10**40}})
def test_parsing_raises_nothing_but_payload_error(payload: Any) -> None:
    """Arbitrary JSON either parses into an event or raises PayloadError with located problems."""
    try:
        event = read_payload(payload)
    except PayloadError as error:
        assert error.problems
        assert all(p.path.startswith("$") and p.message for p in error.problems)
    else:
        assert isinstance(event, WebhookEvent)
        assert event.event_type == event.event_type.strip().lower()
        assert attrs.has(type(event))
