"""The status table: every row, every mapping row, and every (state, event) pair."""

from __future__ import annotations

import itertools
from typing import Any

import attrs
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from postflow_webhooks.adapters.payload import read_payload
from postflow_webhooks.domain.events import Dialect, EventKind, WebhookEvent
from postflow_webhooks.domain.mapping import (
    DEFAULT_REVIEW_MAPPING,
    ReviewMapping,
    ReviewMappingError,
)
from postflow_webhooks.domain.records import Enrichment, FileInfo
from postflow_webhooks.domain.state_machine import (
    TABLE,
    FileState,
    transition,
    unmapped_review_option,
)
from postflow_webhooks.domain.statuses import PostflowStatus, Processing, Review, displayed_status
from tests.unit.strategies import (
    PROCESSING_WORDS,
    REVIEW_WORDS,
    UNMAPPED_WORDS,
    enrichments,
    events,
    file_states,
    review_mappings,
)

NOTHING = Enrichment()
NEW = FileState()


def event(event_type: str, **resource: Any) -> WebhookEvent:
    """A V4-style event (PostFlow-style when a status is given) about file ``f``."""
    key = "event_type" if {"status", "review_status"} & resource.keys() else "type"
    return read_payload({key: event_type, "resource": {"id": "f", **resource}})


def details(
    status: str | None = None, review: str | None = None, version: int | None = None
) -> Enrichment:
    """What the file-details port answers for file ``f``."""
    return Enrichment(
        file=FileInfo(file_id="f", status=status, review_status=review, version=version)
    )


def state(processing: Processing, review: Review = Review.NONE, **kw: Any) -> FileState:
    """A file state on the given axes."""
    return FileState(processing=processing, review=review, **kw)


def after(start: FileState, *evs: WebhookEvent, enrichment: Enrichment = NOTHING) -> FileState:
    """The state after applying the events in order."""
    for e in evs:
        start = transition(start, e, enrichment)
    return start


ORDER = [
    Processing.NONE,
    Processing.UPLOADING,
    Processing.PROCESSING,
    Processing.FAILED,
    Processing.READY,
]


def at_least(current: Processing, floor: Processing) -> Processing:
    """The spec's forward-only rule, written from the issue's order."""
    return max(current, floor, key=ORDER.index)


def test_the_table_has_a_row_for_every_kind() -> None:
    """One table module decides every kind of event, unknown ones included."""
    assert set(TABLE) == set(EventKind)


# --- file.created / asset.created ---------------------------------------------------


@pytest.mark.parametrize("name", ["file.created", "asset.created"])
def test_created_makes_a_new_file_uploading(name: str) -> None:
    """A created event puts a new file at UPLOADING."""
    assert after(NEW, event(name)).processing is Processing.UPLOADING


@pytest.mark.parametrize("start", ORDER[1:], ids=lambda p: p.name)
def test_a_late_created_never_moves_a_file_back(start: Processing) -> None:
    """file.created arriving after later events leaves processing where it is."""
    assert after(state(start), event("file.created")).processing is start


# --- file.upload.completed -------------------------------------------------------


@pytest.mark.parametrize("start", ORDER, ids=lambda p: p.name)
def test_upload_completed_is_at_least_processing(start: Processing) -> None:
    """file.upload.completed raises processing to PROCESSING, never lowers it."""
    result = after(state(start), event("file.upload.completed")).processing
    assert result is at_least(start, Processing.PROCESSING)


def test_a_late_upload_completed_never_moves_a_completed_file_back() -> None:
    """A late upload.completed never moves a COMPLETED file back."""
    result = after(state(Processing.READY), event("file.upload.completed", status="processing"))
    assert displayed_status(result.processing, result.review) is PostflowStatus.COMPLETED


# --- file.ready / asset.ready ------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "start"), list(itertools.product(["file.ready", "asset.ready"], ORDER))
)
def test_ready_makes_any_file_ready(name: str, start: Processing) -> None:
    """file.ready and asset.ready make processing READY from any state, FAILED included."""
    assert after(state(start), event(name)).processing is Processing.READY


def test_ready_keeps_the_review_decision() -> None:
    """A file approved before it finished processing stays APPROVED when it becomes ready."""
    result = after(state(Processing.PROCESSING, Review.APPROVED), event("file.ready"))
    assert (result.processing, result.review) == (Processing.READY, Review.APPROVED)


# --- file.status.changed ----------------------------------------------------------


@pytest.mark.parametrize(
    ("word", "start"), list(itertools.product(sorted(PROCESSING_WORDS), ORDER)), ids=str
)
def test_status_changed_moves_processing_forward_only(word: str, start: Processing) -> None:
    """file.status.changed sets processing per its mapped status, never backwards."""
    result = after(state(start), event("file.status.changed", status=word)).processing
    assert result is at_least(start, PROCESSING_WORDS[word])


def test_failed_then_ready_is_ready_but_ready_then_failed_stays_ready() -> None:
    """A failed file may become ready; a ready file never becomes failed."""
    failed = event("file.status.changed", status="failed")
    ready = event("file.status.changed", status="ready")
    assert after(NEW, failed).processing is Processing.FAILED
    assert after(NEW, failed, ready).processing is Processing.READY
    assert after(NEW, ready, failed).processing is Processing.READY


@pytest.mark.parametrize("word", sorted(REVIEW_WORDS))
def test_status_changed_with_a_review_word_records_the_decision(word: str) -> None:
    """The seed also sends review words as file.status.changed; they set the review."""
    result = after(state(Processing.READY), event("file.status.changed", status=word))
    assert (result.processing, result.review) == (Processing.READY, REVIEW_WORDS[word])


@pytest.mark.parametrize("word", UNMAPPED_WORDS)
def test_status_changed_with_an_unmapped_word_changes_nothing(word: str) -> None:
    """in_progress and other unmapped statuses are recorded but decide nothing."""
    start = state(Processing.PROCESSING, Review.APPROVED)
    assert after(start, event("file.status.changed", status=word)) == start


# --- review.status.changed ---------------------------------------------------------


@pytest.mark.parametrize(
    ("word", "before"), list(itertools.product(sorted(REVIEW_WORDS), list(Review))), ids=str
)
def test_any_review_decision_replaces_any_other(word: str, before: Review) -> None:
    """review.status.changed sets the named decision whatever the previous one was."""
    start = state(Processing.READY, before)
    result = after(start, event("review.status.changed", review_status=word))
    assert (result.processing, result.review) == (Processing.READY, REVIEW_WORDS[word])


@pytest.mark.parametrize("word", ["in_progress", "none", "", "pending"])
def test_an_unmapped_review_status_keeps_the_decision(word: str) -> None:
    """A review status outside the table never clears or replaces the decision."""
    start = state(Processing.READY, Review.REJECTED)
    assert after(start, event("review.status.changed", review_status=word)) == start


# --- file.versioned / asset.versioned ----------------------------------------------


@pytest.mark.parametrize(
    ("name", "start", "review"),
    list(itertools.product(["file.versioned", "asset.versioned"], ORDER, list(Review))),
    ids=str,
)
def test_a_new_version_restarts_processing_and_clears_the_review(
    name: str, start: Processing, review: Review
) -> None:
    """A versioning starts version n+1 at PROCESSING with no review decision."""
    result = after(state(start, review, version=2), event(name))
    assert (result.version, result.processing, result.review) == (
        3,
        Processing.PROCESSING,
        Review.NONE,
    )


def test_a_repeated_versioning_right_after_is_not_a_second_version() -> None:
    """A redelivered file.versioned with no number does not add another version."""
    once = after(state(Processing.READY), event("file.versioned"))
    twice = after(once, event("file.versioned"))
    assert once.version == twice.version == 2


def test_a_versioning_after_progress_is_a_new_version() -> None:
    """Once the new version has moved on, the next versioning starts another version."""
    result = after(
        state(Processing.READY),
        event("file.versioned"),
        event("file.ready"),
        event("file.versioned"),
    )
    assert (result.version, result.processing) == (3, Processing.PROCESSING)


def test_an_explicit_version_number_is_honoured() -> None:
    """resource.version sets the version number instead of counting."""
    result = after(state(Processing.READY), event("file.versioned", version=5))
    assert (result.version, result.processing) == (5, Processing.PROCESSING)


def test_explicit_versions_are_not_deduplicated_by_freshness() -> None:
    """Two numbered versions in a row are two versions, even right after each other."""
    result = after(NEW, event("file.versioned", version=2), event("file.versioned", version=3))
    assert result.version == 3


@pytest.mark.parametrize("number", [1, 2, 3])
def test_an_old_or_current_version_number_changes_nothing(number: int) -> None:
    """A versioning naming the current or an older version is stale and ignored."""
    start = state(Processing.READY, Review.APPROVED, version=3)
    assert after(start, event("file.versioned", version=number)) == start


def test_the_version_number_may_come_from_the_api() -> None:
    """For an IDs-only versioning the API's version number is honoured."""
    result = after(state(Processing.READY), event("file.versioned"), enrichment=details(version=4))
    assert result.version == 4


# --- metadata.value.updated / asset.label.updated ----------------------------------


@pytest.mark.parametrize(
    ("field", "review"),
    [
        ("Needs Review", Review.NEEDS_REVIEW),
        ("Approved", Review.APPROVED),
        ("Rejected", Review.REJECTED),
    ],
)
def test_the_status_field_sets_the_review(field: str, review: Review) -> None:
    """metadata.value.updated sets the review per the file's Status field from the API."""
    start = state(Processing.READY)
    result = after(start, event("metadata.value.updated"), enrichment=details(review=field))
    assert (result.processing, result.review) == (Processing.READY, review)


def test_metadata_without_details_is_recorded_only() -> None:
    """Without file details a metadata update changes nothing."""
    start = state(Processing.READY, Review.NEEDS_REVIEW)
    assert after(start, event("metadata.value.updated")) == start


@pytest.mark.parametrize("field", ["In Progress", "ready", "failed", None])
def test_a_status_field_outside_the_review_words_changes_nothing(field: str | None) -> None:
    """In Progress, processing words and an empty Status field leave the state alone."""
    start = state(Processing.PROCESSING, Review.APPROVED)
    result = after(start, event("metadata.value.updated"), enrichment=details(review=field))
    assert result == start


@pytest.mark.parametrize(
    ("label", "review"),
    [("needs_review", Review.NEEDS_REVIEW), ("approved", Review.APPROVED)],
)
def test_a_v2_label_sets_the_review(label: str, review: Review) -> None:
    """asset.label.updated with a label sets the review to it."""
    result = after(state(Processing.READY), event("asset.label.updated", label=label))
    assert result.review is review


def test_a_v2_in_progress_label_decides_nothing() -> None:
    """The V2 label in_progress keeps whatever decision there was."""
    start = state(Processing.READY, Review.APPROVED)
    assert after(start, event("asset.label.updated", label="in_progress")) == start


def test_a_v2_label_update_without_label_uses_the_api() -> None:
    """asset.label.updated with no label reads the Status field from the API."""
    result = after(
        state(Processing.READY), event("asset.label.updated"), enrichment=details(review="approved")
    )
    assert result.review is Review.APPROVED


# --- comment.created, deleted, anything else ---------------------------------------


def test_a_comment_changes_no_state() -> None:
    """comment.created leaves the state alone (the service counts it)."""
    start = state(Processing.PROCESSING, Review.NEEDS_REVIEW, version=2, version_fresh=True)
    comment = read_payload(
        {"event_type": "comment.created", "resource": {"id": "f", "status": "ready"}}
    )
    assert after(start, comment) == start


@pytest.mark.parametrize("name", ["file.deleted", "asset.deleted"])
def test_deleting_marks_the_file_deleted_and_keeps_its_state(name: str) -> None:
    """A deleted event marks the record deleted and changes nothing else."""
    start = state(Processing.READY, Review.APPROVED, version=2)
    assert after(start, event(name)) == attrs.evolve(start, deleted=True)


@pytest.mark.parametrize(
    "later",
    [
        event("file.ready"),
        event("file.versioned"),
        event("review.status.changed", review_status="approved"),
        event("file.status.changed", status="failed"),
    ],
    ids=lambda e: e.event_type,
)
def test_later_events_never_change_a_deleted_file(later: WebhookEvent) -> None:
    """After deletion no event changes the state."""
    gone = after(state(Processing.UPLOADING), event("file.deleted"))
    assert after(gone, later, enrichment=details("transcoded", "Approved", 9)) == gone


@pytest.mark.parametrize("name", ["folder.created", "file.copied", "share.viewed", "x.y"])
def test_anything_else_has_no_effect(name: str) -> None:
    """Events outside the table are recorded and change nothing."""
    start = state(Processing.PROCESSING)
    assert after(start, event(name), enrichment=details("transcoded", "Approved", 9)) == start


# --- reconciliation ----------------------------------------------------------------


def test_reconciliation_applies_the_api_view_forward_only() -> None:
    """A reconciliation takes the API's file status and Status field, never backwards."""
    rec = WebhookEvent.reconciliation("f")
    moved = after(state(Processing.UPLOADING), rec, enrichment=details("transcoded", "Approved"))
    assert (moved.processing, moved.review) == (Processing.READY, Review.APPROVED)
    kept = after(state(Processing.READY), rec, enrichment=details("uploaded"))
    assert kept.processing is Processing.READY


# --- the studio's review field --------------------------------------------------------

STUDIO = ReviewMapping.with_defaults(
    "Review Stage",
    (
        ("Changes Requested", PostflowStatus.REJECTED),
        ("Client Approved", PostflowStatus.APPROVED),
        ("Final", PostflowStatus.APPROVED),
        ("Internal Review", PostflowStatus.WAITING_APPROVAL),
        ("On Hold", None),
    ),
)


def decide(start: FileState, value: str | None, mapping: ReviewMapping = STUDIO) -> FileState:
    """The state after the review field took ``value`` (metadata.value.updated + the API)."""
    return transition(
        start, event("metadata.value.updated"), details(review=value), mapping=mapping
    )


@pytest.mark.parametrize(
    ("value", "review"),
    [
        ("Changes Requested", Review.REJECTED),
        ("changes-requested", Review.REJECTED),
        ("Client Approved", Review.APPROVED),
        ("FINAL", Review.APPROVED),
        ("Internal Review", Review.NEEDS_REVIEW),
        ("Approved", Review.APPROVED),
    ],
)
def test_a_studio_option_sets_its_decision(value: str, review: Review) -> None:
    """Each configured option (any case or separator) sets the decision it is mapped to."""
    assert decide(state(Processing.READY), value).review is review


@pytest.mark.parametrize("value", ["On Hold", "In Progress"])
def test_a_no_decision_option_keeps_the_decision(value: str) -> None:
    """An option mapped to no decision changes nothing, and is not reported."""
    start = state(Processing.READY, Review.APPROVED)
    assert decide(start, value) == start
    found = unmapped_review_option(
        event("metadata.value.updated"), details(review=value), mapping=STUDIO
    )
    assert found is None


def test_an_unknown_option_decides_nothing_and_is_reported() -> None:
    """An option the mapping lacks keeps the decision, and is named for the status page."""
    start = state(Processing.READY, Review.NEEDS_REVIEW)
    assert decide(start, " Legal Hold ") == start
    found = unmapped_review_option(
        event("metadata.value.updated"), details(review=" Legal Hold "), mapping=STUDIO
    )
    assert found == "Legal Hold"


def test_a_mapping_without_the_defaults_knows_only_its_own_options() -> None:
    """A mapping given in full (not merged) does not read Frame.io's default option names."""
    own = ReviewMapping(options=(("OK", PostflowStatus.APPROVED),))
    start = state(Processing.READY)
    assert decide(start, "OK", own).review is Review.APPROVED
    assert decide(start, "Approved", own) == start


def test_a_payload_word_falls_back_to_the_studio_options() -> None:
    """review.status.changed naming a studio option means what the option means."""
    e = event("review.status.changed", review_status="Changes Requested")
    result = transition(state(Processing.READY), e, NOTHING, mapping=STUDIO)
    assert result.review is Review.REJECTED


def test_postflow_words_win_over_the_studio_options_in_payloads() -> None:
    """PostFlow's own word "approved" keeps its meaning even if a studio option says otherwise."""
    odd = ReviewMapping.with_defaults(options=(("Approved", PostflowStatus.REJECTED),))
    e = event("review.status.changed", review_status="approved")
    assert transition(state(Processing.READY), e, NOTHING, mapping=odd).review is Review.APPROVED
    assert decide(state(Processing.READY), "Approved", odd).review is Review.REJECTED


def test_the_default_mapping_is_frameio_out_of_the_box() -> None:
    """Defaults: Needs Review, Approved, Rejected decide; In Progress decides nothing."""
    assert DEFAULT_REVIEW_MAPPING.field == "Status"
    assert DEFAULT_REVIEW_MAPPING.shown() == {
        "Needs Review": "WAITING_APPROVAL",
        "Approved": "APPROVED",
        "Rejected": "REJECTED",
        "In Progress": None,
    }


@pytest.mark.parametrize(
    "status", [PostflowStatus.COMPLETED, PostflowStatus.FAILED, PostflowStatus.PROCESSING]
)
def test_an_option_may_not_mean_a_processing_status(status: PostflowStatus) -> None:
    """Only review decisions (or no decision) may be given to an option; the error names it."""
    with pytest.raises(ReviewMappingError, match=f"'Final'.*{status.name}"):
        ReviewMapping(options=(("Final", status),))


# --- every mapping row through the table -------------------------------------------

EXPECTED_DISPLAY = {
    "processing": PostflowStatus.PROCESSING,
    "ready": PostflowStatus.COMPLETED,
    "needs_review": PostflowStatus.WAITING_APPROVAL,
    "approved": PostflowStatus.APPROVED,
    "rejected": PostflowStatus.REJECTED,
    "failed": PostflowStatus.FAILED,
    "error": PostflowStatus.FAILED,
    "created": PostflowStatus.UPLOADING,
    "uploaded": PostflowStatus.PROCESSING,
    "transcoded": PostflowStatus.COMPLETED,
    "Needs Review": PostflowStatus.WAITING_APPROVAL,
    "Approved": PostflowStatus.APPROVED,
    "Rejected": PostflowStatus.REJECTED,
}


@pytest.mark.parametrize(("word", "shown"), EXPECTED_DISPLAY.items())
def test_each_mapping_row_shows_its_postflow_status(word: str, shown: PostflowStatus) -> None:
    """A status change naming a mapped word on a new file shows that row's PostFlow status."""
    name = "review.status.changed" if word.lower().replace(" ", "_") in REVIEW_WORDS else None
    e = event(name, review_status=word) if name else event("file.status.changed", status=word)
    result = after(NEW, e)
    assert displayed_status(result.processing, result.review) is shown


# --- every (state, event) pair -------------------------------------------------------

ALL_STATES = [
    FileState(processing=p, review=r, version=2, version_fresh=f, deleted=d)
    for p, r, f, d in itertools.product(Processing, Review, [False, True], [False, True])
]
WORDS = [None, *PROCESSING_WORDS, *REVIEW_WORDS, "in_progress"]


def check_invariants(
    before: FileState,
    e: WebhookEvent,
    enrichment: Enrichment,
    mapping: ReviewMapping = DEFAULT_REVIEW_MAPPING,
) -> None:
    """The rules every transition obeys, whatever the state, the event and the mapping."""
    result = transition(before, e, enrichment, mapping=mapping)
    # Applying the same fact again changes nothing.
    assert transition(result, e, enrichment, mapping=mapping) == result
    if before.deleted:
        assert result == before
        return
    if e.kind is EventKind.DELETED:
        assert result == attrs.evolve(before, deleted=True)
        return
    assert not result.deleted
    if e.kind in (EventKind.COMMENT, EventKind.OTHER, EventKind.UPDATED):
        assert result == before
        return
    assert result.version >= before.version
    if result.version > before.version:
        assert e.kind is EventKind.VERSIONED
        assert (result.processing, result.review) == (Processing.PROCESSING, Review.NONE)
        assert result.version_fresh
        return
    # Within one version: processing forward only, a decision is never withdrawn.
    assert ORDER.index(result.processing) >= ORDER.index(before.processing)
    if before.review is not Review.NONE:
        assert result.review is not Review.NONE
    if e.kind is EventKind.VERSIONED:
        assert result == before
    if result.version_fresh:
        assert before.version_fresh
        assert (result.processing, result.review) == (before.processing, before.review)
    row = TABLE[e.kind]
    if row.floor is not None:
        assert ORDER.index(result.processing) >= ORDER.index(row.floor)


def test_every_state_and_every_event_kind_with_every_table_word() -> None:
    """Exhaustively, every state x kind x mapped word obeys the table's invariants."""
    count = 0
    for before, kind, status, review in itertools.product(ALL_STATES, EventKind, WORDS, WORDS):
        name = next(n for n, k in _KIND_NAMES if k is kind)
        e = WebhookEvent(
            event_type=name,
            kind=kind,
            dialect=Dialect.POSTFLOW,
            resource_id="f",
            file_id="f",
            status=status,
            review_status=review,
        )
        check_invariants(before, e, details(status, review))
        check_invariants(before, e, NOTHING)
        count += 1
    assert count == len(ALL_STATES) * len(EventKind) * len(WORDS) ** 2


_KIND_NAMES = [
    ("file.created", EventKind.CREATED),
    ("file.upload.completed", EventKind.UPLOAD_COMPLETED),
    ("file.ready", EventKind.READY),
    ("file.status.changed", EventKind.STATUS_CHANGED),
    ("review.status.changed", EventKind.REVIEW_CHANGED),
    ("file.versioned", EventKind.VERSIONED),
    ("metadata.value.updated", EventKind.METADATA_CHANGED),
    ("comment.created", EventKind.COMMENT),
    ("file.updated", EventKind.UPDATED),
    ("file.deleted", EventKind.DELETED),
    ("postflow.reconciled", EventKind.RECONCILED),
    ("folder.created", EventKind.OTHER),
]


@settings(max_examples=300, deadline=None)
@given(file_states, events(), enrichments(), review_mappings())
@example(
    FileState(Processing.READY),
    WebhookEvent("file.upload.completed", EventKind.UPLOAD_COMPLETED, Dialect.V4, file_id="f"),
    NOTHING,
    DEFAULT_REVIEW_MAPPING,
)
@example(
    FileState(Processing.FAILED, version_fresh=True),
    WebhookEvent("file.versioned", EventKind.VERSIONED, Dialect.V4, file_id="f", version=1),
    NOTHING,
    DEFAULT_REVIEW_MAPPING,
)
def test_any_state_and_any_event_obey_the_invariants(
    before: FileState, e: WebhookEvent, enrichment: Enrichment, mapping: ReviewMapping
) -> None:
    """Any state, event, API answer and studio mapping: the table's invariants hold."""
    check_invariants(before, e, enrichment, mapping)


@given(file_states.filter(lambda s: not s.deleted), st.sampled_from(sorted(REVIEW_WORDS)))
def test_displayed_status_is_the_decision_when_there_is_one(before: FileState, word: str) -> None:
    """After a review decision the display shows it, whatever processing says."""
    result = after(before, event("review.status.changed", review_status=word))
    assert displayed_status(result.processing, result.review) is EXPECTED_DISPLAY[word]
    assert (result.processing, result.version) == (before.processing, before.version)
