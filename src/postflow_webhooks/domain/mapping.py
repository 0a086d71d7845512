"""Status words to the processing or review axis, and the studio's review field.

Every dialect spells statuses its own way ("Needs Review", "needs-review",
"needs_review"); they are compared after folding case, spaces and hyphens.

Two vocabularies meet here:

* PostFlow's own words (``STATUS_MAP``), which the payloads of the PostFlow
  dialect and Frame.io's file statuses use. They are fixed.
* the studio's review field (``ReviewMapping``): which Frame.io metadata field
  carries the review decision, and what each of its options means. It is
  configuration, passed in as a value; the default equals Frame.io's
  out-of-the-box ``Status`` field.
"""

from __future__ import annotations

import re

import attrs

from postflow_webhooks.domain.statuses import PostflowStatus, Processing, Review

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
    """What one of PostFlow's status words means, or ``None`` when it decides nothing."""
    if text is None:
        return None
    return STATUS_MAP.get(fold_status(text))


# --- the studio's review field ------------------------------------------------------

DEFAULT_REVIEW_FIELD = "Status"

# The statuses a review option may stand for; ``None`` is "no decision".
REVIEW_DECISIONS: dict[PostflowStatus, Review] = {
    PostflowStatus.WAITING_APPROVAL: Review.NEEDS_REVIEW,
    PostflowStatus.APPROVED: Review.APPROVED,
    PostflowStatus.REJECTED: Review.REJECTED,
}

ReviewOption = tuple[str, PostflowStatus | None]

# Frame.io's own Status field, as the receiver has always read it.
DEFAULT_REVIEW_OPTIONS: tuple[ReviewOption, ...] = (
    ("Needs Review", PostflowStatus.WAITING_APPROVAL),
    ("Approved", PostflowStatus.APPROVED),
    ("Rejected", PostflowStatus.REJECTED),
    ("In Progress", None),
)


class ReviewMappingError(ValueError):
    """A review mapping that cannot be used; says which option and why."""


def _check_options(options: tuple[ReviewOption, ...]) -> dict[str, Review]:
    meanings: dict[str, Review] = {}
    for name, status in options:
        if not name.strip():
            raise ReviewMappingError("an option name is empty")
        if status is None:
            meanings[fold_status(name)] = Review.NONE
            continue
        if status not in REVIEW_DECISIONS:
            allowed = ", ".join(s.name for s in REVIEW_DECISIONS)
            raise ReviewMappingError(
                f"option {name!r}: {status.name} is not a review decision; "
                f"use {allowed} or null (no decision)"
            )
        meanings[fold_status(name)] = REVIEW_DECISIONS[status]
    return meanings


@attrs.frozen
class ReviewMapping:
    """Which metadata field carries the review decision, and what each of its options means.

    ``field`` is the field's name (compared case- and space-insensitively) or
    its id. ``options`` pairs an option's name with the PostFlow status it
    stands for, or with ``None`` for an option that decides nothing ("In
    Progress"); a later pair overrides an earlier one with the same folded
    name. An option absent from the mapping also decides nothing, and is
    reported (``meaning`` answers ``None``).
    """

    field: str = DEFAULT_REVIEW_FIELD
    options: tuple[ReviewOption, ...] = DEFAULT_REVIEW_OPTIONS
    _meanings: dict[str, Review] = attrs.field(init=False, eq=False, repr=False, hash=False)

    def __attrs_post_init__(self) -> None:
        if not self.field.strip():
            raise ReviewMappingError("the review field's name or id is empty")
        object.__setattr__(self, "_meanings", _check_options(self.options))

    @classmethod
    def with_defaults(
        cls, field: str | None = None, options: tuple[ReviewOption, ...] = ()
    ) -> ReviewMapping:
        """Frame.io's defaults with the studio's options added (theirs win on the same name)."""
        given = {fold_status(name) for name, _ in options}
        kept = tuple(pair for pair in DEFAULT_REVIEW_OPTIONS if fold_status(pair[0]) not in given)
        return cls(field=field or DEFAULT_REVIEW_FIELD, options=(*kept, *options))

    def meaning(self, text: str | None) -> Review | None:
        """What an option means: a decision, ``Review.NONE`` (no decision), or ``None`` (unknown)."""
        if text is None or not text.strip():
            return None
        return self._meanings.get(fold_status(text))

    def shown(self) -> dict[str, str | None]:
        """The options as configured, name -> status name (``None``: no decision)."""
        return {name: status.name if status else None for name, status in self.options}


DEFAULT_REVIEW_MAPPING = ReviewMapping()
