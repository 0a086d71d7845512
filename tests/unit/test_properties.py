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
from postflow_webhooks.domain.mapping import DEFAULT_REVIEW_MAPPING, ReviewMapping, fold_status
from postflow_webhooks.domain.records import Enrichment, FileInfo, UploadRecord
from postflow_webhooks.domain.rules import Outcome
from postflow_webhooks.domain.statuses import PostflowStatus, Review
from tests.unit.strategies import (
    any_dialect_payloads,
    apply,
    maybe_wrapped,
    option_texts,
    processing_words,
    replay,
    review_mappings,
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


QUIET = (Outcome.UNCHANGED, Outcome.RECORDED, Outcome.IGNORED_DELETED, Outcome.UNTRACKED_RESOURCE)


@settings(max_examples=200, deadline=None)
@given(st.lists(steps, max_size=6), steps, review_mappings())
@example([], (v4("file.versioned"), NOTHING), DEFAULT_REVIEW_MAPPING)
@example([(v4("file.ready"), NOTHING)], (v4("file.versioned"), NOTHING), DEFAULT_REVIEW_MAPPING)
@example(
    [], (postflow("comment.created", text="hi", author="Ana"), NOTHING), DEFAULT_REVIEW_MAPPING
)
@example([(v4("file.deleted"), NOTHING)], (v4("file.ready"), NOTHING), DEFAULT_REVIEW_MAPPING)
@example(
    [(postflow("comment.created", comment_id="c1"), NOTHING)],
    (postflow("comment.deleted", comment_id="c1"), NOTHING),
    DEFAULT_REVIEW_MAPPING,
)
@example(
    [],
    (postflow("comment.created", comment_id="c2", parent_id="c1", text="yes"), NOTHING),
    DEFAULT_REVIEW_MAPPING,
)
def test_applying_an_event_twice_equals_applying_it_once(
    prefix: list[tuple[WebhookEvent, Enrichment]],
    step: tuple[WebhookEvent, Enrichment],
    mapping: ReviewMapping,
) -> None:
    """Whatever the studio's mapping, a redelivered event changes and announces nothing again."""
    event, enrichment = step
    target = event.file_id or "f-1"
    record = replay(prefix, file_id=target, mapping=mapping)
    once, _ = apply(record, event, enrichment, n=100, mapping=mapping)
    twice, second = apply(once, event, enrichment, n=101, mapping=mapping)
    assert twice == once
    assert second.notifications == ()
    assert second.record is None
    assert second.outcome in QUIET


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
    review_mappings(),
)
@example(
    [],
    (
        [v4("file.ready"), v4("file.upload.completed")],
        [v4("file.upload.completed"), v4("file.ready")],
    ),
    DEFAULT_REVIEW_MAPPING,
)
@example(
    [(v4("file.versioned"), NOTHING)],
    (
        [postflow("file.status.changed", status="failed"), v4("file.ready")],
        [v4("file.ready"), postflow("file.status.changed", status="failed")],
    ),
    DEFAULT_REVIEW_MAPPING,
)
def test_processing_events_of_one_version_commute(
    prefix: list[tuple[WebhookEvent, Enrichment]],
    orders: tuple[list[WebhookEvent], list[WebhookEvent]],
    mapping: ReviewMapping,
) -> None:
    """Whatever the mapping, any order of one version's processing events ends in one state."""
    first, second = orders
    base = replay(prefix, mapping=mapping)
    results = []
    for order in (first, second):
        record = base
        for n, event in enumerate(order):
            record, _ = apply(record, event, NOTHING, n=50 + n, mapping=mapping)
        results.append(settled(record))
    assert results[0] == results[1]


# --- COMPLETED never goes back without a new version ---------------------------------


@settings(max_examples=200, deadline=None)
@given(st.lists(steps, max_size=20), review_mappings())
@example(
    [
        (v4("file.ready"), NOTHING),
        (v4("file.upload.completed"), NOTHING),
        (v4("file.created"), NOTHING),
        (postflow("file.status.changed", status="processing"), NOTHING),
        (postflow("file.status.changed", status="failed"), NOTHING),
    ],
    DEFAULT_REVIEW_MAPPING,
)
@example(
    [
        (v4("file.ready"), NOTHING),
        (v4("file.versioned", version=1), NOTHING),
        (v4("file.upload.completed"), NOTHING),
    ],
    DEFAULT_REVIEW_MAPPING,
)
def test_completed_never_goes_back_without_a_new_version(
    sequence: list[tuple[WebhookEvent, Enrichment]], mapping: ReviewMapping
) -> None:
    """Whatever the mapping, once COMPLETED a version never shows PROCESSING or UPLOADING."""
    records: dict[str, UploadRecord] = {}
    completed: set[tuple[str, int]] = set()
    for n, (event, enrichment) in enumerate(sequence):
        if event.file_id is None:
            continue
        record, _ = apply(records.get(event.file_id), event, enrichment, n=n, mapping=mapping)
        if record is None:
            continue
        records[event.file_id] = record
        key = (record.file_id, record.version)
        if record.status is PostflowStatus.COMPLETED:
            completed.add(key)
        elif record.status in (PostflowStatus.PROCESSING, PostflowStatus.UPLOADING):
            assert key not in completed


# --- the studio's review field, under any mapping -------------------------------------


@st.composite
def mapped_values(draw: st.DrawFn) -> tuple[ReviewMapping, str]:
    """A mapping and a review-field value: one of its options or not."""
    mapping = draw(review_mappings())
    return mapping, draw(option_texts(mapping))


def spec_meaning(mapping: ReviewMapping, value: str) -> tuple[bool, Review | None]:
    """(known, decision) for a value, read from the mapping's pairs as the issue states it."""
    known, decision = False, None
    for name, status in mapping.options:  # later pairs win
        if fold_status(name) == fold_status(value):
            known, decision = True, None if status is None else DECISIONS[status]
    return known, decision


DECISIONS = {
    PostflowStatus.WAITING_APPROVAL: Review.NEEDS_REVIEW,
    PostflowStatus.APPROVED: Review.APPROVED,
    PostflowStatus.REJECTED: Review.REJECTED,
}


@settings(max_examples=300, deadline=None)
@given(st.lists(steps, max_size=5), mapped_values())
def test_the_review_field_means_what_the_mapping_says(
    prefix: list[tuple[WebhookEvent, Enrichment]], mapped: tuple[ReviewMapping, str]
) -> None:
    """An option sets its decision; "no decision" and unknown options keep it; unknown is reported."""
    mapping, value = mapped
    record = replay(prefix, mapping=mapping)
    event = v4("metadata.value.updated")
    details = Enrichment(file=FileInfo(file_id="f-1", review_status=value))
    after, decision = apply(record, event, details, n=100, mapping=mapping)
    known, meaning = spec_meaning(mapping, value)
    before_review = record.review if record is not None else Review.NONE
    if record is not None and record.deleted:
        assert decision.outcome is Outcome.IGNORED_DELETED
        return
    assert after is not None
    assert after.review is (meaning or before_review)
    assert decision.unmapped_option == (None if known else value.strip())


@settings(max_examples=200, deadline=None)
@given(
    st.lists(steps, max_size=6),
    review_mappings(),
    st.sampled_from(["file.updated", "asset.updated"]),
)
def test_an_update_never_changes_the_status(
    prefix: list[tuple[WebhookEvent, Enrichment]], mapping: ReviewMapping, name: str
) -> None:
    """file.updated renames and relinks, whatever the API says of the file's status."""
    record = replay(prefix, mapping=mapping)
    details = Enrichment(
        file=FileInfo(
            file_id="f-1",
            name="renamed.mov",
            status="transcoded",
            review_status="Approved",
            version=9,
        )
    )
    after, decision = apply(record, v4(name), details, n=100, mapping=mapping)
    if record is None:
        assert (after, decision.outcome) == (None, Outcome.RECORDED)
        return
    assert after is not None
    assert (after.status, after.version, after.history) == (
        record.status,
        record.version,
        record.history,
    )
    assert decision.notifications == ()
    assert after.name == ("renamed.mov" if not record.deleted else record.name)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(steps, max_size=6),
    st.sampled_from(
        ["file.created", "file.ready", "file.versioned", "file.updated", "file.deleted"]
    ),
    st.sampled_from(["version_stack", "folder"]),
)
def test_a_version_stack_never_becomes_a_record(
    prefix: list[tuple[WebhookEvent, Enrichment]], name: str, kind: str
) -> None:
    """A delivery about a version stack (or a folder) creates, changes and announces nothing."""
    record = replay(prefix, file_id="f-1")
    event = read_payload({"type": name, "resource": {"id": "f-1", "type": kind}})
    details = Enrichment(file=FileInfo(file_id="f-1", status="transcoded", version=9))
    after, decision = apply(record, event, details, n=100)
    assert (after, decision.outcome, decision.notifications) == (
        record,
        Outcome.UNTRACKED_RESOURCE,
        (),
    )


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
