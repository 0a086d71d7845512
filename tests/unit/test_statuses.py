"""PostFlow's statuses, their labels, and how the two axes display as one status."""

from __future__ import annotations

import itertools

import pytest

from postflow_webhooks.domain.statuses import (
    PostflowStatus,
    Processing,
    Review,
    axes_for,
    displayed_status,
)

# The labels exactly as the seed and the issue write them.
LABELS = {
    PostflowStatus.UPLOADING: "UPLOADING 🔄",
    PostflowStatus.PROCESSING: "PROCESSING ⚙️",
    PostflowStatus.COMPLETED: "COMPLETED 🎉",
    PostflowStatus.FAILED: "FAILED ❌",
    PostflowStatus.WAITING_APPROVAL: "WAITING_APPROVAL ⏳",
    PostflowStatus.APPROVED: "APPROVED ✅",
    PostflowStatus.REJECTED: "REJECTED 🚫",
}


@pytest.mark.parametrize(("status", "label"), LABELS.items(), ids=lambda v: str(v))
def test_each_status_has_the_seed_label(status: PostflowStatus, label: str) -> None:
    """Every PostFlow status carries its label exactly as the seed writes it, emoji included."""
    assert status.label == label


def test_there_are_exactly_the_seven_statuses() -> None:
    """PostFlow knows seven statuses, no more."""
    assert set(PostflowStatus) == set(LABELS)


@pytest.mark.parametrize("status", list(PostflowStatus), ids=lambda s: s.name)
def test_from_text_reads_name_and_label(status: PostflowStatus) -> None:
    """A status is read back from its name or its label, padded or not."""
    assert PostflowStatus.from_text(status.name) is status
    assert PostflowStatus.from_text(LABELS[status]) is status
    assert PostflowStatus.from_text(f"  {LABELS[status]} ") is status


@pytest.mark.parametrize("text", ["", "DONE", "completed", "COMPLETED 🎈", "🎉"])
def test_from_text_rejects_other_text(text: str) -> None:
    """Text that is neither a status name nor a label reads as no status."""
    assert PostflowStatus.from_text(text) is None


PROCESSING_DISPLAY = {
    Processing.NONE: None,
    Processing.UPLOADING: PostflowStatus.UPLOADING,
    Processing.PROCESSING: PostflowStatus.PROCESSING,
    Processing.FAILED: PostflowStatus.FAILED,
    Processing.READY: PostflowStatus.COMPLETED,
}
REVIEW_DISPLAY = {
    Review.NEEDS_REVIEW: PostflowStatus.WAITING_APPROVAL,
    Review.APPROVED: PostflowStatus.APPROVED,
    Review.REJECTED: PostflowStatus.REJECTED,
}


@pytest.mark.parametrize("processing", list(Processing), ids=lambda p: p.name)
def test_without_a_decision_processing_is_displayed(processing: Processing) -> None:
    """With no review decision the displayed status is the processing state's."""
    assert displayed_status(processing, Review.NONE) is PROCESSING_DISPLAY[processing]


@pytest.mark.parametrize(
    ("processing", "review"),
    list(itertools.product(Processing, REVIEW_DISPLAY)),
    ids=lambda v: v.name,
)
def test_a_review_decision_wins_over_processing(processing: Processing, review: Review) -> None:
    """Any review decision is displayed whatever the processing state."""
    assert displayed_status(processing, review) is REVIEW_DISPLAY[review]


def test_processing_ranks_follow_the_forward_order() -> None:
    """Processing moves none -> uploading -> processing -> failed -> ready, ready last."""
    order = [
        Processing.NONE,
        Processing.UPLOADING,
        Processing.PROCESSING,
        Processing.FAILED,
        Processing.READY,
    ]
    assert [p.rank for p in order] == sorted(p.rank for p in Processing)
    assert len({p.rank for p in Processing}) == len(Processing)


def test_failed_may_become_ready_but_not_the_reverse() -> None:
    """READY outranks FAILED, so forward-only lets a failed file become ready, never back."""
    assert Processing.READY.rank > Processing.FAILED.rank


@pytest.mark.parametrize("status", list(PostflowStatus))
def test_a_label_alone_gives_back_a_state_displayed_with_that_label(status: PostflowStatus) -> None:
    """axes_for inverts displayed_status for every label PostFlow may have written."""
    assert displayed_status(*axes_for(status)) is status


# The values PostFlow's upload tracker stores and compares (its UploadStatus), emoji first.
TRACKER_VALUES = {
    PostflowStatus.UPLOADING: "🔄 UPLOADING",
    PostflowStatus.PROCESSING: "⚙️ PROCESSING",
    PostflowStatus.COMPLETED: "🎉 COMPLETED",
    PostflowStatus.FAILED: "❌ FAILED",
    PostflowStatus.WAITING_APPROVAL: "⏳ WAITING_APPROVAL",
    PostflowStatus.APPROVED: "✅ APPROVED",
    PostflowStatus.REJECTED: "🚫 REJECTED",
}


@pytest.mark.parametrize("status", list(PostflowStatus), ids=lambda s: s.name)
def test_each_status_has_postflows_tracker_value(status: PostflowStatus) -> None:
    """The tracker value is PostFlow's own, emoji first, and reads back as the same status."""
    assert status.tracker_value == TRACKER_VALUES[status]
    assert PostflowStatus.from_text(TRACKER_VALUES[status]) is status
    assert PostflowStatus.from_text(f" {TRACKER_VALUES[status]}\n") is status
