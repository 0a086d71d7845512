"""Frame.io status strings to the processing or review axis.

Every dialect spells statuses its own way ("Needs Review", "needs-review",
"needs_review"); they are compared after folding case, spaces and hyphens.
"""

from __future__ import annotations

import re

from postflow_webhooks.domain.statuses import Processing, Review

StatusMeaning = Processing | Review

_FOLD = re.compile(r"[\s\-_]+")

# One row per accepted spelling (after folding). Anything absent, including
# "in_progress", is recorded by the caller but decides nothing.
STATUS_MAP: dict[str, StatusMeaning] = {
    # The seed's rows (PostFlow dialect).
    "processing": Processing.PROCESSING,
    "ready": Processing.READY,
    "needs_review": Review.NEEDS_REVIEW,
    "approved": Review.APPROVED,
    "rejected": Review.REJECTED,
    # Failures.
    "failed": Processing.FAILED,
    "error": Processing.FAILED,
    # Frame.io V4 file status.
    "created": Processing.UPLOADING,
    "uploaded": Processing.PROCESSING,
    "transcoded": Processing.READY,
}


def fold_status(text: str) -> str:
    """Fold case and separators (space, hyphen, underscore): "Needs - Review" -> "needs_review"."""
    return _FOLD.sub("_", text.strip().lower())


def map_status(text: str | None) -> StatusMeaning | None:
    """What a status string means for a file, or ``None`` when it decides nothing."""
    if text is None:
        return None
    return STATUS_MAP.get(fold_status(text))
