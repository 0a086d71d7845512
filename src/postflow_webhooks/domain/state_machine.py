"""The status table: how each kind of event moves a file's state.

How it works
------------
A file's state has two axes (``statuses.py``) plus a version:

* *processing* only moves forward within a version (``Processing.rank``), so
  every processing rule is "at least X": applying it twice, or in another
  order, ends in the same place. ``READY`` outranks ``FAILED``: a failed file
  may still become ready, a ready one never becomes failed.
* *review* holds the latest decision; any decision replaces any other. It goes
  back to ``NONE`` only when a new version starts.
* a new version restarts processing at ``PROCESSING`` and clears the review.

Each row of ``TABLE`` says, for one kind of event, which processing floor it
sets, where it reads a status string from (the payload or the API's answer),
and whether it starts a version or deletes the record. ``transition`` is the
one function that looks rows up and applies them. Nothing else in the project
decides a status.

Two vocabularies are read. A word in a payload is one of PostFlow's own
(``mapping.STATUS_MAP``: processing or review) or, failing that, one of the
studio's review options. The review field read from the API (``API Status
field``) is read with the studio's options only: each means what the
``ReviewMapping`` passed in says, a decision or no decision. A review value
that is neither decides nothing and is reported (``unmapped_review_option``).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

import attrs

from postflow_webhooks.domain.events import EventKind, WebhookEvent
from postflow_webhooks.domain.mapping import (
    DEFAULT_REVIEW_MAPPING,
    ReviewMapping,
    StatusMeaning,
    map_status,
)
from postflow_webhooks.domain.records import Enrichment
from postflow_webhooks.domain.statuses import Processing, Review


class Source(enum.Enum):
    """Where a row reads a status string from."""

    PAYLOAD_STATUS = "payload status"
    PAYLOAD_REVIEW = "payload review status or label"
    API_FILE_STATUS = "API file status"
    API_STATUS_FIELD = "API Status field"


@attrs.frozen
class Row:
    """One row of the table."""

    floor: Processing | None = None
    status_from: tuple[Source, ...] = ()
    review_from: tuple[Source, ...] = ()
    new_version: bool = False
    delete: bool = False


_NOTHING = Row()

TABLE: Mapping[EventKind, Row] = {
    # file.created, asset.created: processing at least uploading.
    EventKind.CREATED: Row(floor=Processing.UPLOADING),
    # file.upload.completed: processing at least processing.
    EventKind.UPLOAD_COMPLETED: Row(floor=Processing.PROCESSING),
    # file.ready, asset.ready: ready (links are kept by the service).
    EventKind.READY: Row(floor=Processing.READY),
    # file.status.changed: whatever the status names (the seed also sends
    # review words here), processing forward only.
    EventKind.STATUS_CHANGED: Row(status_from=(Source.PAYLOAD_STATUS, Source.PAYLOAD_REVIEW)),
    # review.status.changed: the review decision it names.
    EventKind.REVIEW_CHANGED: Row(status_from=(Source.PAYLOAD_REVIEW, Source.PAYLOAD_STATUS)),
    # file.versioned, asset.versioned: a new version starts.
    EventKind.VERSIONED: Row(new_version=True),
    # metadata.value.updated, asset.label.updated: the Status field decides.
    EventKind.METADATA_CHANGED: Row(review_from=(Source.PAYLOAD_REVIEW, Source.API_STATUS_FIELD)),
    # file.updated, asset.updated: name and links refreshed by the rules, never the status.
    EventKind.UPDATED: _NOTHING,
    # comment.*: the comment rules keep the counts, no status change.
    EventKind.COMMENT: _NOTHING,
    # file.deleted, asset.deleted: later events change nothing.
    EventKind.DELETED: Row(delete=True),
    # reconciliation: the API's view of the file, forward only.
    EventKind.RECONCILED: Row(
        status_from=(Source.API_FILE_STATUS,), review_from=(Source.API_STATUS_FIELD,)
    ),
    # Anything else is recorded and has no effect.
    EventKind.OTHER: _NOTHING,
}


@attrs.frozen
class FileState:
    """The part of a record the table moves."""

    processing: Processing = Processing.NONE
    review: Review = Review.NONE
    version: int = 1
    version_fresh: bool = False
    deleted: bool = False


def row_for(kind: EventKind) -> Row:
    """The table's row for a kind of event."""
    return TABLE.get(kind, _NOTHING)


def transition(
    state: FileState,
    event: WebhookEvent,
    enrichment: Enrichment,
    *,
    mapping: ReviewMapping = DEFAULT_REVIEW_MAPPING,
) -> FileState:
    """The state after ``event``; the same state when the event changes nothing."""
    if state.deleted:
        return state
    row = row_for(event.kind)
    if row.delete:
        return attrs.evolve(state, deleted=True)
    new = _start_version(state, event, enrichment) if row.new_version else state
    processing, review = new.processing, new.review
    if row.floor is not None:
        processing = _forward(processing, row.floor)
    meaning = _word_meaning(_first(row.status_from, event, enrichment), mapping)
    if isinstance(meaning, Processing):
        processing = _forward(processing, meaning)
    elif isinstance(meaning, Review) and meaning is not Review.NONE:
        review = meaning
    decision = _option_meaning(_first(row.review_from, event, enrichment), mapping)
    if decision is not None and decision is not Review.NONE:
        review = decision
    if (processing, review) == (new.processing, new.review):
        return new
    return attrs.evolve(new, processing=processing, review=review, version_fresh=False)


def unmapped_review_option(
    event: WebhookEvent,
    enrichment: Enrichment,
    *,
    mapping: ReviewMapping = DEFAULT_REVIEW_MAPPING,
) -> str | None:
    """The review-field value this event reads when it is none of the field's options."""
    found = _first(row_for(event.kind).review_from, event, enrichment)
    if found is None or _option_meaning(found, mapping) is not None:
        return None
    return found[1].strip()


def _word_meaning(found: tuple[Source, str] | None, mapping: ReviewMapping) -> StatusMeaning | None:
    """A status word: PostFlow's own, else (in a payload) one of the studio's options."""
    if found is None:
        return None
    source, text = found
    meaning = map_status(text)
    if meaning is None and source in _PAYLOAD:
        return mapping.meaning(text)
    return meaning


def _option_meaning(found: tuple[Source, str] | None, mapping: ReviewMapping) -> Review | None:
    """A review value: (in a payload) PostFlow's review word, else the studio's option."""
    if found is None:
        return None
    source, text = found
    if source in _PAYLOAD:
        word = map_status(text)
        if isinstance(word, Review):
            return word
    return mapping.meaning(text)


def _forward(current: Processing, target: Processing) -> Processing:
    return target if target.rank > current.rank else current


def _start_version(state: FileState, event: WebhookEvent, enrichment: Enrichment) -> FileState:
    given = event.version
    if given is None and enrichment.file is not None:
        given = enrichment.file.version
    if given is not None:
        if given <= state.version:
            return state
        number = given
    elif state.version_fresh:
        # A repeated delivery of the versioning we just applied.
        return state
    else:
        number = state.version + 1
    return attrs.evolve(
        state,
        version=number,
        processing=Processing.PROCESSING,
        review=Review.NONE,
        version_fresh=True,
    )


_PAYLOAD = (Source.PAYLOAD_STATUS, Source.PAYLOAD_REVIEW)


def _first(
    sources: tuple[Source, ...], event: WebhookEvent, enrichment: Enrichment
) -> tuple[Source, str] | None:
    """The first non-empty text the sources hold, with where it came from."""
    for source in sources:
        text = _read(source, event, enrichment)
        if text is not None and text.strip():
            return source, text
    return None


def _read(source: Source, event: WebhookEvent, enrichment: Enrichment) -> str | None:
    if source is Source.PAYLOAD_STATUS:
        return event.status
    if source is Source.PAYLOAD_REVIEW:
        return event.review_status
    info = enrichment.file
    if info is None:
        return None
    if source is Source.API_FILE_STATUS:
        return info.status
    return info.review_status
