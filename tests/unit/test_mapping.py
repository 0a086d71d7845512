"""Frame.io status strings to the processing or review axis, in any spelling."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from postflow_webhooks.domain.mapping import fold_status, map_status
from postflow_webhooks.domain.statuses import Processing, Review
from tests.unit.strategies import (
    PROCESSING_WORDS,
    REVIEW_WORDS,
    UNMAPPED_WORDS,
    spellings,
)

# One row per mapping row of the issue, spelled as each sender writes it.
ROWS = [
    # The seed's five rows.
    ("processing", Processing.PROCESSING),
    ("ready", Processing.READY),
    ("needs_review", Review.NEEDS_REVIEW),
    ("approved", Review.APPROVED),
    ("rejected", Review.REJECTED),
    # Failures.
    ("failed", Processing.FAILED),
    ("error", Processing.FAILED),
    # Frame.io V4 file status.
    ("created", Processing.UPLOADING),
    ("uploaded", Processing.PROCESSING),
    ("transcoded", Processing.READY),
    # V4 Status field options.
    ("Needs Review", Review.NEEDS_REVIEW),
    ("Approved", Review.APPROVED),
    ("Rejected", Review.REJECTED),
    # V2 labels.
    ("needs_review", Review.NEEDS_REVIEW),
    ("approved", Review.APPROVED),
]


@pytest.mark.parametrize(("text", "meaning"), ROWS)
def test_each_mapping_row(text: str, meaning: Processing | Review) -> None:
    """Each row of the issue's mapping table maps its word to its meaning."""
    assert map_status(text) is meaning


@pytest.mark.parametrize("text", ["in_progress", "In Progress", "IN-PROGRESS", "none", ""])
def test_in_progress_and_unmapped_words_decide_nothing(text: str) -> None:
    """``in_progress``, ``none`` and empty text map to nothing."""
    assert map_status(text) is None


def test_missing_status_decides_nothing() -> None:
    """An absent status maps to nothing."""
    assert map_status(None) is None


ALL_WORDS = {**PROCESSING_WORDS, **REVIEW_WORDS}


@given(st.sampled_from(sorted(ALL_WORDS)).flatmap(lambda w: st.tuples(st.just(w), spellings(w))))
@example(("needs_review", "Needs Review"))
@example(("needs_review", "NEEDS-REVIEW"))
@example(("needs_review", " needs - review\t"))
@example(("needs_review", "needs_ review"))
@example(("approved", "APPROVED "))
def test_matching_ignores_case_spaces_and_hyphens(word_and_spelling: tuple[str, str]) -> None:
    """Any case, padding and separator (space, hyphen, underscore) maps like the plain word."""
    word, spelling = word_and_spelling
    assert map_status(spelling) is ALL_WORDS[word]


@given(st.sampled_from(UNMAPPED_WORDS).flatmap(spellings))
def test_unmapped_words_in_any_spelling_decide_nothing(spelling: str) -> None:
    """Words outside the table stay unmapped however they are spelled."""
    assert map_status(spelling) is None


@given(st.text(max_size=30))
@example("need_sreview")
@example("approve")
@example("ready!")
def test_map_status_is_total_and_agrees_with_the_table(text: str) -> None:
    """Any text maps to a table meaning or to nothing, and only table words map."""
    meaning = map_status(text)
    folded = fold_status(text)
    if meaning is None:
        assert folded not in ALL_WORDS
    else:
        assert ALL_WORDS[folded] is meaning


@given(st.text(max_size=30))
def test_folding_is_idempotent(text: str) -> None:
    """Folding a folded string changes nothing."""
    assert fold_status(fold_status(text)) == fold_status(text)
