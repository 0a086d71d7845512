"""The two axes of a tracked file's state and the PostFlow status they display.

A file has a *processing* state (how far Frame.io got with the media) and a
*review* decision (what a reviewer said). PostFlow shows one status: the review
decision when there is one, else the processing state.
"""

from __future__ import annotations

import enum


class Processing(enum.Enum):
    """How far Frame.io got with one version of a file.

    The order of ``rank`` is the order processing may move in: a state only
    ever moves to a higher rank within one version. ``READY`` outranks
    ``FAILED`` so that a failed file can still become ready, never the reverse.
    """

    NONE = "none"
    UPLOADING = "uploading"
    PROCESSING = "processing"
    FAILED = "failed"
    READY = "ready"

    @property
    def rank(self) -> int:
        """Position in the forward-only order."""
        return _PROCESSING_ORDER.index(self)


_PROCESSING_ORDER = (
    Processing.NONE,
    Processing.UPLOADING,
    Processing.PROCESSING,
    Processing.FAILED,
    Processing.READY,
)


class Review(enum.Enum):
    """A reviewer's decision on the current version of a file."""

    NONE = "none"
    NEEDS_REVIEW = "needs_review"
    APPROVED = "approved"
    REJECTED = "rejected"


class PostflowStatus(enum.Enum):
    """The status PostFlow's upload tracker displays, with its label."""

    UPLOADING = "UPLOADING 🔄"
    PROCESSING = "PROCESSING ⚙️"
    COMPLETED = "COMPLETED 🎉"
    FAILED = "FAILED ❌"
    WAITING_APPROVAL = "WAITING_APPROVAL ⏳"
    APPROVED = "APPROVED ✅"
    REJECTED = "REJECTED 🚫"

    @property
    def label(self) -> str:
        """The label people read (the user's guide writes "APPROVED ✅")."""
        return self.value

    @property
    def tracker_value(self) -> str:
        """The value PostFlow's upload tracker stores and compares: emoji first ("✅ APPROVED")."""
        name, _, emoji = self.value.partition(" ")
        return f"{emoji} {name}"

    @classmethod
    def from_text(cls, text: str) -> PostflowStatus | None:
        """Read a status from its name, its label or its tracker value; ``None`` otherwise."""
        cleaned = text.strip()
        for status in cls:
            if cleaned in (status.name, status.value, status.tracker_value):
                return status
        return None


_BY_PROCESSING = {
    Processing.NONE: None,
    Processing.UPLOADING: PostflowStatus.UPLOADING,
    Processing.PROCESSING: PostflowStatus.PROCESSING,
    Processing.FAILED: PostflowStatus.FAILED,
    Processing.READY: PostflowStatus.COMPLETED,
}

_BY_REVIEW = {
    Review.NEEDS_REVIEW: PostflowStatus.WAITING_APPROVAL,
    Review.APPROVED: PostflowStatus.APPROVED,
    Review.REJECTED: PostflowStatus.REJECTED,
}


def displayed_status(processing: Processing, review: Review) -> PostflowStatus | None:
    """The status PostFlow shows: the review decision if any, else processing."""
    if review is not Review.NONE:
        return _BY_REVIEW[review]
    return _BY_PROCESSING[processing]


def axes_for(status: PostflowStatus) -> tuple[Processing, Review]:
    """The state a record shown with ``status`` is in, when that label is all we know.

    Used for uploads PostFlow labelled itself: the inverse of ``displayed_status``.
    """
    for review, shown in _BY_REVIEW.items():
        if shown is status:
            return Processing.NONE, review
    for processing, shown_by_processing in _BY_PROCESSING.items():
        if shown_by_processing is status:
            return processing, Review.NONE
    raise ValueError(f"no state shows {status.name}")
