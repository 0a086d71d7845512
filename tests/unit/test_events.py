"""Reading deliveries of all three dialects, wrapped or not, into one event."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given

from postflow_webhooks.adapters.payload import read_payload
from postflow_webhooks.domain.errors import PayloadError
from postflow_webhooks.domain.events import CommentAction, CommentText, Dialect, EventKind
from tests.unit.strategies import (
    V4_OTHER_EVENTS,
    any_dialect_payloads,
    postflow_payloads,
    v2_payloads,
    v4_payloads,
)

V4_READY = {
    "account": {"id": "6f70f1bd-acc"},
    "project": {"id": "7e46e495-prj"},
    "resource": {"id": "d3075547-file", "type": "file"},
    "type": "file.ready",
    "user": {"id": "56556a3f-usr"},
    "workspace": {"id": "378fcbf7-wsp"},
}
V2_LABEL = {
    "type": "asset.label.updated",
    "resource": {"type": "asset", "id": "asset-9"},
    "team": {"id": "team-1"},
    "user": {"id": "user-1"},
    "project": {"id": "proj-1"},
}


def problems_of(payload: object) -> dict[str, str]:
    """The problems ``read_payload`` reports, by JSON path."""
    with pytest.raises(PayloadError) as caught:
        read_payload(payload)
    return {p.path: p.message for p in caught.value.problems}


# --- the three dialects ------------------------------------------------------------


def test_postflow_upload_completed_carries_name_and_status() -> None:
    """The seed's file.upload.completed keeps its id, name and status."""
    event = read_payload(
        {
            "event_type": "file.upload.completed",
            "resource": {"id": "file_id", "name": "video.mp4", "status": "processing"},
        }
    )
    assert event.dialect is Dialect.POSTFLOW
    assert event.kind is EventKind.UPLOAD_COMPLETED
    assert (event.file_id, event.name, event.status) == ("file_id", "video.mp4", "processing")
    assert not event.ids_only


def test_postflow_review_change_carries_review_status() -> None:
    """The seed's review.status.changed keeps its review status."""
    event = read_payload(
        {
            "event_type": "review.status.changed",
            "resource": {"id": "file_id", "name": "video.mp4", "review_status": "approved"},
        }
    )
    assert event.kind is EventKind.REVIEW_CHANGED
    assert event.review_status == "approved"


@pytest.mark.parametrize(
    ("event_type", "kind"),
    [
        ("file.upload.completed", EventKind.UPLOAD_COMPLETED),
        ("file.ready", EventKind.READY),
        ("file.status.changed", EventKind.STATUS_CHANGED),
        ("review.status.changed", EventKind.REVIEW_CHANGED),
        ("comment.created", EventKind.COMMENT),
    ],
)
def test_every_seed_event_has_its_kind(event_type: str, kind: EventKind) -> None:
    """Each of the seed's five events is read as the kind the status table expects."""
    event = read_payload({"event_type": event_type, "resource": {"id": "f"}})
    assert event.kind is kind
    assert event.dialect is Dialect.POSTFLOW


def test_v4_delivery_is_ids_only() -> None:
    """A real V4 delivery yields its ids and nothing else."""
    event = read_payload(V4_READY)
    assert event.dialect is Dialect.V4
    assert event.ids_only
    assert event.kind is EventKind.READY
    assert event.file_id == "d3075547-file"
    assert event.resource_type == "file"
    assert (event.account_id, event.workspace_id, event.project_id, event.user_id) == (
        "6f70f1bd-acc",
        "378fcbf7-wsp",
        "7e46e495-prj",
        "56556a3f-usr",
    )
    assert (event.name, event.status, event.review_status, event.version) == (None,) * 4


@pytest.mark.parametrize(
    ("event_type", "kind"),
    [
        ("file.created", EventKind.CREATED),
        ("file.upload.completed", EventKind.UPLOAD_COMPLETED),
        ("file.ready", EventKind.READY),
        ("file.versioned", EventKind.VERSIONED),
        ("file.deleted", EventKind.DELETED),
        ("metadata.value.updated", EventKind.METADATA_CHANGED),
        ("file.updated", EventKind.UPDATED),
        ("comment.created", EventKind.COMMENT),
        ("comment.updated", EventKind.COMMENT),
        ("comment.deleted", EventKind.COMMENT),
        ("comment.completed", EventKind.COMMENT),
        ("comment.uncompleted", EventKind.COMMENT),
    ],
)
def test_every_v4_event_in_the_table_has_its_kind(event_type: str, kind: EventKind) -> None:
    """Each V4 event the table names is read as its kind."""
    event = read_payload({**V4_READY, "type": event_type})
    assert event.kind is kind
    assert event.dialect is Dialect.V4


def test_v4_comment_points_at_the_comment_not_a_file() -> None:
    """A V4 comment.created names the comment; the file comes from the API later."""
    event = read_payload(
        {**V4_READY, "type": "comment.created", "resource": {"id": "cmt-1", "type": "comment"}}
    )
    assert event.kind is EventKind.COMMENT
    assert event.file_id is None
    assert event.comment == CommentText(comment_id="cmt-1")


@pytest.mark.parametrize("action", list(CommentAction), ids=lambda a: a.value)
def test_each_comment_event_says_what_happened(action: CommentAction) -> None:
    """comment.created/updated/deleted/completed/uncompleted carry their action and comment id."""
    event = read_payload(
        {
            **V4_READY,
            "type": f"comment.{action.value}",
            "resource": {"id": "c-9", "type": "comment"},
        }
    )
    assert event.comment == CommentText(comment_id="c-9", action=action)


def test_a_reply_names_its_thread() -> None:
    """A PostFlow-dialect reply carries the id of the comment it answers."""
    event = read_payload(
        {
            "event_type": "comment.created",
            "resource": {"id": "f", "comment_id": "c-2", "parent_id": "c-1", "text": "agreed"},
        }
    )
    assert event.comment == CommentText(text="agreed", comment_id="c-2", parent_id="c-1")


def test_asset_updated_is_an_update_of_the_file() -> None:
    """The legacy asset.updated means what file.updated means: a rename or a new link."""
    event = read_payload({**V2_LABEL, "type": "asset.updated"})
    assert (event.kind, event.file_id) == (EventKind.UPDATED, "asset-9")


@pytest.mark.parametrize("resource_type", ["version_stack", "Version_Stack", "folder", "project"])
@pytest.mark.parametrize("event_type", ["file.created", "file.versioned", "file.updated"])
def test_a_resource_that_is_not_a_file_names_no_file(event_type: str, resource_type: str) -> None:
    """A version_stack (or any untracked type) keeps its id as the resource, never as a file id."""
    event = read_payload(
        {**V4_READY, "type": event_type, "resource": {"id": "vs-1", "type": resource_type}}
    )
    assert (event.resource_id, event.file_id) == ("vs-1", None)
    assert event.untracked_resource


@pytest.mark.parametrize("resource_type", ["file", "FILE", "asset", None])
def test_files_and_assets_are_tracked(resource_type: str | None) -> None:
    """A file, an asset, or a resource of no stated type names its file."""
    resource = {"id": "f-1"} if resource_type is None else {"id": "f-1", "type": resource_type}
    event = read_payload({**V4_READY, "resource": resource})
    assert (event.file_id, event.untracked_resource) == ("f-1", False)


def test_v2_label_update_is_legacy_and_reads_the_label() -> None:
    """A legacy asset.label.updated is read as V2, with its label as the review status."""
    event = read_payload(
        {**V2_LABEL, "resource": {**V2_LABEL["resource"], "label": "needs_review"}}
    )
    assert event.dialect is Dialect.V2
    assert event.ids_only
    assert event.kind is EventKind.METADATA_CHANGED
    assert event.file_id == "asset-9"
    assert event.review_status == "needs_review"


@pytest.mark.parametrize(
    ("event_type", "kind"),
    [
        ("asset.created", EventKind.CREATED),
        ("asset.ready", EventKind.READY),
        ("asset.versioned", EventKind.VERSIONED),
        ("asset.deleted", EventKind.DELETED),
        ("asset.label.updated", EventKind.METADATA_CHANGED),
        ("asset.copied", EventKind.OTHER),
        ("reviewlink.created", EventKind.OTHER),
    ],
)
def test_every_v2_event_has_its_kind(event_type: str, kind: EventKind) -> None:
    """Legacy asset events are read as V2 and as the table's kinds."""
    event = read_payload({**V2_LABEL, "type": event_type})
    assert event.kind is kind
    assert event.dialect is Dialect.V2


def test_a_team_marks_a_delivery_as_legacy() -> None:
    """A ``team`` key makes a file.* delivery V2 (V4 has workspaces instead)."""
    event = read_payload({**V2_LABEL, "type": "file.ready"})
    assert event.dialect is Dialect.V2


def test_event_names_are_trimmed_and_lowercased() -> None:
    """' File.Ready ' is file.ready."""
    event = read_payload({"type": " File.Ready ", "resource": {"id": "f"}})
    assert event.event_type == "file.ready"
    assert event.kind is EventKind.READY


def test_event_type_key_wins_over_type() -> None:
    """A payload with both keys is the PostFlow dialect, named by ``event_type``."""
    event = read_payload(
        {"event_type": "file.ready", "type": "file.deleted", "resource": {"id": "f"}}
    )
    assert (event.kind, event.dialect) == (EventKind.READY, Dialect.POSTFLOW)


# --- the wrapper -------------------------------------------------------------------


@given(any_dialect_payloads)
def test_a_data_wrapper_reads_the_same_as_the_bare_payload(payload: dict[str, Any]) -> None:
    """``{"data": payload}`` is the same event as ``payload``, in every dialect."""
    assert read_payload({"data": payload}) == read_payload(payload)


@given(postflow_payloads())
def test_postflow_payloads_parse(payload: dict[str, Any]) -> None:
    """Every PostFlow-dialect payload parses, keeping its id and statuses."""
    event = read_payload(payload)
    assert event.dialect is Dialect.POSTFLOW
    assert event.file_id == payload["resource"]["id"]
    assert event.status == payload["resource"].get("status")


@given(v4_payloads(events=V4_OTHER_EVENTS))
def test_v4_events_outside_the_table_are_accepted(payload: dict[str, Any]) -> None:
    """V4 events the table does not name parse as OTHER, never as an error."""
    event = read_payload(payload)
    assert event.kind is EventKind.OTHER
    assert event.event_type == payload["type"]


@given(v2_payloads())
def test_v2_payloads_parse_as_legacy(payload: dict[str, Any]) -> None:
    """Every legacy payload parses as V2 with its asset id."""
    event = read_payload(payload)
    assert event.dialect is Dialect.V2
    assert event.file_id == payload["resource"]["id"]


def test_a_wrapper_beside_an_event_name_is_not_unwrapped() -> None:
    """``data`` next to ``type`` is an ordinary key of the payload."""
    event = read_payload(
        {"type": "file.ready", "resource": {"id": "outer"}, "data": {"type": "file.deleted"}}
    )
    assert (event.kind, event.file_id) == (EventKind.READY, "outer")


# --- unknown events ------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        {"type": "folder.created"},
        {"type": "share.viewed", "resource": {"id": "s", "type": "share"}},
        {"event_type": "something.brand.new", "resource": {}},
        {"data": {"type": "project.deleted"}},
    ],
)
def test_unknown_event_types_are_accepted(payload: dict[str, Any]) -> None:
    """Unknown event types parse as OTHER, even without a resource id."""
    assert read_payload(payload).kind is EventKind.OTHER


def test_unknown_resource_types_are_accepted() -> None:
    """A resource type other than file is not rejected, and is never taken for a file."""
    event = read_payload({**V4_READY, "resource": {"id": "x", "type": "reel"}})
    assert (event.kind, event.file_id, event.resource_type) == (EventKind.READY, None, "reel")
    assert (event.resource_id, event.untracked_resource) == ("x", True)


# --- details: ids, versions, links, comments -----------------------------------------


def test_integer_ids_are_read_as_text() -> None:
    """A numeric id is kept as its decimal text."""
    event = read_payload({"type": "file.ready", "resource": {"id": 42}})
    assert event.file_id == "42"


def test_an_explicit_version_is_read() -> None:
    """``resource.version`` is read as the version number."""
    event = read_payload({"type": "file.versioned", "resource": {"id": "f", "version": 3}})
    assert event.version == 3


def test_a_file_id_field_names_the_file() -> None:
    """``resource.file_id`` names the file even when the resource is something else."""
    event = read_payload(
        {"type": "comment.created", "resource": {"id": "c", "type": "comment", "file_id": "f"}}
    )
    assert event.file_id == "f"


def test_links_are_collected_and_non_text_links_dropped() -> None:
    """A ready file's links object and url fields are merged; non-string links are dropped."""
    event = read_payload(
        {
            "event_type": "file.ready",
            "resource": {
                "id": "f",
                "links": {"original": "https://o", "bad": 7},
                "view_url": "https://v",
                "thumbnail_url": "https://t",
            },
        }
    )
    assert dict(event.links) == {
        "original": "https://o",
        "view_url": "https://v",
        "thumbnail_url": "https://t",
    }


@pytest.mark.parametrize(
    ("resource", "expected"),
    [
        (
            {"id": "f", "text": "Nice cut", "author": "Ana", "comment_id": "c1"},
            CommentText(text="Nice cut", author="Ana", comment_id="c1"),
        ),
        (
            {"id": "f", "comment": "Too dark", "author": {"name": "Bo", "id": "u"}},
            CommentText(text="Too dark", author="Bo"),
        ),
    ],
)
def test_comment_text_and_author_are_read(resource: dict[str, Any], expected: CommentText) -> None:
    """A comment's text and author are read from either spelling the seed uses."""
    event = read_payload({"event_type": "comment.created", "resource": resource})
    assert event.comment == expected
    assert event.file_id == "f"


def test_non_comment_events_carry_no_comment() -> None:
    """Only comment events carry comment text."""
    event = read_payload({"event_type": "file.ready", "resource": {"id": "f", "text": "hello"}})
    assert event.comment is None


# --- problems ------------------------------------------------------------------------


@pytest.mark.parametrize("payload", [[], "file.ready", 3, None, True])
def test_a_non_object_payload_is_one_problem_at_the_root(payload: object) -> None:
    """A payload that is not a JSON object is reported at ``$``."""
    assert set(problems_of(payload)) == {"$"}


def test_data_holding_a_non_object_is_not_a_wrapper() -> None:
    """``{"data": []}`` is not a wrapper, so it is a payload without an event name."""
    assert set(problems_of({"data": []})) == {"$.type"}


@pytest.mark.parametrize("payload", [{}, {"resource": {"id": "f"}}, {"type": "  "}, {"type": None}])
def test_a_missing_event_name_is_reported(payload: dict[str, Any]) -> None:
    """Without an event name the problem is at ``$.type``."""
    assert set(problems_of(payload)) == {"$.type"}


@pytest.mark.parametrize(
    "payload",
    [
        {"type": "file.ready"},
        {"type": "file.ready", "resource": {"type": "file"}},
        {"event_type": "review.status.changed", "resource": {"id": None}},
    ],
)
def test_a_known_event_without_a_resource_id_is_reported(payload: dict[str, Any]) -> None:
    """A table event with no resource id is reported at ``$.resource.id``."""
    assert set(problems_of(payload)) == {"$.resource.id"}


def test_problems_inside_a_wrapper_have_wrapped_paths() -> None:
    """Paths inside a ``{"data": ...}`` wrapper start at ``$.data``."""
    assert set(problems_of({"data": {"type": "file.ready"}})) == {"$.data.resource.id"}
    assert set(problems_of({"data": {"type": 1, "resource": {"id": "f"}}})) == {"$.data.type"}


@pytest.mark.parametrize(
    ("payload", "path"),
    [
        ({"type": 5}, "$.type"),
        ({"event_type": ["file.ready"]}, "$.event_type"),
        ({"type": "file.ready", "resource": []}, "$.resource"),
        ({"type": "file.ready", "resource": {"id": 1.5}}, "$.resource.id"),
        ({"type": "file.ready", "resource": {"id": True}}, "$.resource.id"),
        ({"type": "file.ready", "resource": {"id": ""}}, "$.resource.id"),
        ({"type": "file.ready", "resource": {"id": "f", "name": 3}}, "$.resource.name"),
        ({"type": "file.ready", "resource": {"id": "f", "status": {}}}, "$.resource.status"),
        ({"type": "file.versioned", "resource": {"id": "f", "version": "2"}}, "$.resource.version"),
        (
            {"type": "file.versioned", "resource": {"id": "f", "version": True}},
            "$.resource.version",
        ),
        ({"type": "file.ready", "resource": {"id": "f", "links": []}}, "$.resource.links"),
        ({"type": "file.ready", "resource": {"id": "f"}, "account": "a"}, "$.account"),
        ({"type": "file.ready", "resource": {"id": "f"}, "user": {"id": []}}, "$.user.id"),
        (
            {"type": "comment.created", "resource": {"id": "c", "author": {"name": 3}}},
            "$.resource.author.name",
        ),
        ({"type": "comment.created", "resource": {"id": "c", "author": 3}}, "$.resource.author"),
    ],
)
def test_a_wrong_type_is_reported_at_its_path(payload: dict[str, Any], path: str) -> None:
    """A field of the wrong JSON type is reported at its own path."""
    assert set(problems_of(payload)) == {path}


def test_every_problem_is_listed_at_once() -> None:
    """Wrong types everywhere are all reported together, each at its path."""
    payload = {
        "type": 5,
        "resource": {"id": [], "version": "x", "links": [], "author": {"name": 3}},
        "account": 3,
        "workspace": {"id": {}},
    }
    assert set(problems_of(payload)) == {
        "$.type",
        "$.resource.id",
        "$.resource.version",
        "$.resource.links",
        "$.resource.author.name",
        "$.account",
        "$.workspace.id",
    }


def test_a_missing_name_is_listed_beside_wrong_types() -> None:
    """A missing event name is reported together with the type errors, not instead of them."""
    assert set(problems_of({"resource": {"id": "f", "name": 3}})) == {"$.type", "$.resource.name"}


def test_a_missing_id_is_listed_beside_wrong_types() -> None:
    """A missing resource id is reported together with the type errors."""
    payload = {"type": "file.ready", "resource": {"name": 3}, "account": 1}
    assert set(problems_of(payload)) == {"$.resource.id", "$.resource.name", "$.account"}


def test_problems_say_what_was_expected() -> None:
    """Each problem's message names what was expected and what came."""
    problems = problems_of({"type": "file.versioned", "resource": {"id": "f", "version": "2"}})
    assert "integer" in problems["$.resource.version"]
    assert "string" in problems["$.resource.version"]


def test_the_error_message_lists_each_path() -> None:
    """The error's text names every problem's path, for logs."""
    with pytest.raises(PayloadError) as caught:
        read_payload({"type": 1, "resource": {"id": "f", "name": 2}})
    assert "$.type" in str(caught.value)
    assert "$.resource.name" in str(caught.value)
