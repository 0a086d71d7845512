"""Shared hypothesis strategies: status spellings, payloads of each dialect, events, states.

The canonical words and their meanings are written here from the issue's mapping
rows, independently of ``domain/mapping.py``, so tests compare the code with the
spec rather than with itself.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import strategies as st

from postflow_webhooks.adapters.payload import read_payload
from postflow_webhooks.domain.events import EVENT_KINDS, Dialect, EventKind, WebhookEvent
from postflow_webhooks.domain.mapping import (
    DEFAULT_REVIEW_MAPPING,
    ReviewMapping,
    fold_status,
)
from postflow_webhooks.domain.records import Enrichment, FileInfo, UploadRecord
from postflow_webhooks.domain.rules import Decision, apply_event
from postflow_webhooks.domain.state_machine import FileState
from postflow_webhooks.domain.statuses import PostflowStatus, Processing, Review

# --- status words, from the mapping rows -------------------------------

PROCESSING_WORDS: dict[str, Processing] = {
    "processing": Processing.PROCESSING,
    "ready": Processing.READY,
    "failed": Processing.FAILED,
    "error": Processing.FAILED,
    "created": Processing.UPLOADING,
    "uploaded": Processing.PROCESSING,
    "transcoded": Processing.READY,
}
REVIEW_WORDS: dict[str, Review] = {
    "needs_review": Review.NEEDS_REVIEW,
    "approved": Review.APPROVED,
    "rejected": Review.REJECTED,
}
UNMAPPED_WORDS = ("in_progress", "none", "pending", "unknown", "needsreview", "ready_ish")

SEPARATORS = ("_", " ", "-", "  ", " - ", "_-_", "\t", "__")


@st.composite
def spellings(draw: st.DrawFn, canonical: str) -> str:
    """``canonical`` as some sender might spell it: any case, any separator, padded."""
    parts = canonical.split("_")
    text = parts[0]
    for part in parts[1:]:
        text += draw(st.sampled_from(SEPARATORS)) + part
    upper = draw(st.lists(st.booleans(), min_size=len(text), max_size=len(text)))
    text = "".join(c.upper() if u else c.lower() for c, u in zip(text, upper, strict=True))
    pad = st.sampled_from(("", " ", "  ", "\t", "\n"))
    return draw(pad) + text + draw(pad)


processing_words = st.sampled_from(sorted(PROCESSING_WORDS))
review_words = st.sampled_from(sorted(REVIEW_WORDS))
unmapped_words = st.sampled_from(UNMAPPED_WORDS)


def spelled(words: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """Any spelling of any of ``words``."""
    return words.flatmap(spellings)


# Option names a studio might use (Frame.io's defaults among them).
OPTION_NAMES = (
    "Needs Review",
    "Approved",
    "Rejected",
    "In Progress",
    "Changes Requested",
    "Client Approved",
    "Final",
    "On Hold",
    "Étalonnage OK",
)
option_words = st.sampled_from(OPTION_NAMES).map(fold_status)

# Anything a sender may put in a status field: the mapped words in any
# spelling, a studio's option names, words that decide nothing, and arbitrary text.
status_texts = st.one_of(
    spelled(processing_words),
    spelled(review_words),
    spelled(option_words),
    unmapped_words,
    st.text(max_size=12),
)

# --- payloads of each dialect ------------------------------------------------------

POSTFLOW_EVENTS = (
    "file.upload.completed",
    "file.ready",
    "file.status.changed",
    "review.status.changed",
    "comment.created",
)
V4_FILE_EVENTS = (
    "file.created",
    "file.upload.completed",
    "file.ready",
    "file.versioned",
    "file.deleted",
    "file.updated",
    "metadata.value.updated",
)
V4_COMMENT_EVENTS = (
    "comment.created",
    "comment.updated",
    "comment.deleted",
    "comment.completed",
    "comment.uncompleted",
)
V4_OTHER_EVENTS = (
    "file.copied",
    "folder.created",
    "customfield.created",
    "project.updated",
    "collection.deleted",
    "share.viewed",
)
V2_EVENTS = (
    "asset.created",
    "asset.ready",
    "asset.versioned",
    "asset.deleted",
    "asset.label.updated",
    "asset.copied",
    "asset.updated",
    "reviewlink.created",
)
# Resource types Frame.io may send that are not files we track.
UNTRACKED_TYPES = ("version_stack", "folder", "project")

file_ids = st.sampled_from(("f-1", "f-2", "f-3"))
FILE_TYPE = st.just("file")
uuids = st.uuids().map(str)
names = st.sampled_from(("video.mp4", "take 2.mov", "épisode_03.mxf"))
link_urls = st.sampled_from(("https://f.io/a", "https://f.io/b", "https://cdn.example/x.mp4"))
LINK_FIELDS = ("view_url", "download_url", "thumbnail_url", "original_url")


def _optional(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | strategy


@st.composite
def postflow_payloads(
    draw: st.DrawFn, events: Iterable[str] = POSTFLOW_EVENTS, ids: st.SearchStrategy[str] = file_ids
) -> dict[str, Any]:
    """A PostFlow-dialect payload: ``event_type``, the status inside ``resource``."""
    event_type = draw(st.sampled_from(tuple(events)))
    resource: dict[str, Any] = {"id": draw(ids)}
    for key, strategy in (
        ("name", names),
        ("status", status_texts),
        ("review_status", status_texts),
    ):
        value = draw(_optional(strategy))
        if value is not None:
            resource[key] = value
    for field in draw(st.lists(st.sampled_from(LINK_FIELDS), unique=True, max_size=2)):
        resource[field] = draw(link_urls)
    if event_type == "comment.created":
        resource["text"] = draw(st.text(max_size=20))
        resource["author"] = draw(st.sampled_from(("Ana", {"name": "Bo", "id": "u-2"})))
        resource["comment_id"] = draw(st.sampled_from(("c-1", "c-2")))
    return {"event_type": event_type, "resource": resource}


@st.composite
def v4_payloads(
    draw: st.DrawFn,
    events: Iterable[str] = V4_FILE_EVENTS,
    ids: st.SearchStrategy[str] = file_ids,
    types: st.SearchStrategy[str] = FILE_TYPE,
) -> dict[str, Any]:
    """A Frame.io V4 payload: ``type``, IDs only."""
    return {
        "account": {"id": draw(uuids)},
        "project": {"id": draw(uuids)},
        "resource": {"id": draw(ids), "type": draw(types)},
        "type": draw(st.sampled_from(tuple(events))),
        "user": {"id": draw(uuids)},
        "workspace": {"id": draw(uuids)},
    }


@st.composite
def v2_payloads(
    draw: st.DrawFn, events: Iterable[str] = V2_EVENTS, ids: st.SearchStrategy[str] = file_ids
) -> dict[str, Any]:
    """A legacy V2 payload: ``asset.*`` events, a ``team``, sometimes a label."""
    resource: dict[str, Any] = {"type": "asset", "id": draw(ids)}
    label = draw(_optional(st.sampled_from(("approved", "needs_review", "in_progress"))))
    if label is not None:
        resource["label"] = label
    return {
        "type": draw(st.sampled_from(tuple(events))),
        "resource": resource,
        "team": {"id": draw(uuids)},
        "user": {"id": draw(uuids)},
        "project": {"id": draw(uuids)},
    }


def maybe_wrapped(payloads: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[Any]:
    """Each payload bare or inside a ``{"data": ...}`` wrapper."""
    return payloads.flatmap(lambda p: st.sampled_from((p, {"data": p})))


any_dialect_payloads = st.one_of(
    postflow_payloads(),
    v4_payloads(events=V4_FILE_EVENTS + V4_OTHER_EVENTS),
    v4_payloads(events=V4_FILE_EVENTS, types=st.sampled_from(UNTRACKED_TYPES)),
    v4_payloads(
        events=V4_COMMENT_EVENTS, ids=st.sampled_from(("c-1", "c-2")), types=st.just("comment")
    ),
    v2_payloads(),
)

# --- the studio's review field: generated mappings --------------------------------

REVIEW_TARGETS = (
    PostflowStatus.WAITING_APPROVAL,
    PostflowStatus.APPROVED,
    PostflowStatus.REJECTED,
    None,
)


@st.composite
def review_mappings(draw: st.DrawFn) -> ReviewMapping:
    """A studio's review mapping: some options (by any spelling) to decisions or no decision."""
    names = draw(st.lists(st.sampled_from(OPTION_NAMES), unique=True, max_size=6))
    options = tuple(
        (draw(spellings(fold_status(n))), draw(st.sampled_from(REVIEW_TARGETS))) for n in names
    )
    field = draw(st.sampled_from(("Status", "Review Stage", "fd-status")))
    if draw(st.booleans()):
        return ReviewMapping.with_defaults(field, options)
    return ReviewMapping(field=field, options=options)


def option_texts(mapping: ReviewMapping) -> st.SearchStrategy[str]:
    """A review-field value: one of the mapping's options (any spelling) or one it lacks."""
    known = [name for name, _ in mapping.options]
    known_texts = (
        st.sampled_from(known).flatmap(lambda n: spellings(fold_status(n)))
        if known
        else st.nothing()
    )
    return st.one_of(known_texts, st.sampled_from(OPTION_NAMES), unmapped_words)


# --- events, enrichments, states -----------------------------------------------------

_NAMES_BY_KIND: dict[EventKind, tuple[str, ...]] = {}
for _name, _kind in EVENT_KINDS.items():
    _NAMES_BY_KIND[_kind] = (*_NAMES_BY_KIND.get(_kind, ()), _name)
_NAMES_BY_KIND[EventKind.OTHER] = ("folder.created", "share.viewed", "file.copied")


@st.composite
def events(draw: st.DrawFn, kinds: Iterable[EventKind] = tuple(EventKind)) -> WebhookEvent:
    """An event of any kind, any dialect, with arbitrary status strings and version."""
    kind = draw(st.sampled_from(tuple(kinds)))
    event_type = draw(st.sampled_from(_NAMES_BY_KIND[kind]))
    fid = draw(file_ids)
    resource_type = draw(st.sampled_from((None, "file", "file", "version_stack")))
    return WebhookEvent(
        event_type=event_type,
        kind=kind,
        dialect=draw(st.sampled_from(tuple(Dialect))),
        resource_id=fid,
        resource_type=resource_type,
        file_id=None if resource_type == "version_stack" else fid,
        status=draw(_optional(status_texts)),
        review_status=draw(_optional(status_texts)),
        version=draw(_optional(st.integers(min_value=1, max_value=6))),
    )


@st.composite
def enrichments(draw: st.DrawFn) -> Enrichment:
    """What the file-details port may answer: nothing, or a file with any statuses."""
    if draw(st.booleans()):
        return Enrichment()
    return Enrichment(
        file=FileInfo(
            file_id=draw(file_ids),
            status=draw(_optional(status_texts)),
            review_status=draw(_optional(status_texts)),
            version=draw(_optional(st.integers(min_value=1, max_value=6))),
        )
    )


file_states = st.builds(
    FileState,
    processing=st.sampled_from(tuple(Processing)),
    review=st.sampled_from(tuple(Review)),
    version=st.integers(min_value=1, max_value=5),
    version_fresh=st.booleans(),
    deleted=st.booleans(),
)

parsed_events = maybe_wrapped(any_dialect_payloads).map(read_payload)
steps = st.tuples(st.one_of(parsed_events, events()), enrichments())

# --- folding events through the service ----------------------------------------------

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def at(n: int) -> datetime:
    """The n-th instant of a test run, one second apart."""
    return T0 + timedelta(seconds=n)


def apply(
    record: UploadRecord | None,
    event: WebhookEvent,
    enrichment: Enrichment,
    n: int = 0,
    mapping: ReviewMapping = DEFAULT_REVIEW_MAPPING,
) -> tuple[UploadRecord | None, Decision]:
    """Apply one event the way the worker does: keep the old record when none is returned."""
    decision = apply_event(
        record, event, enrichment, at=at(n), delivery_id=f"d-{n}", mapping=mapping
    )
    return (decision.record if decision.record is not None else record), decision


def replay(
    steps: Iterable[tuple[WebhookEvent, Enrichment]],
    file_id: str = "f-1",
    mapping: ReviewMapping = DEFAULT_REVIEW_MAPPING,
) -> UploadRecord | None:
    """The record of ``file_id`` after the steps about it, applied in order."""
    record: UploadRecord | None = None
    for n, (event, enrichment) in enumerate(steps):
        if event.file_id == file_id:
            record, _ = apply(record, event, enrichment, n, mapping)
    return record
