"""The worker and the studio's workflow: review mapping, routes, names, deleted comments."""

from __future__ import annotations

import logging

import pytest

from postflow_webhooks.domain.announce import AnnouncePolicy, Route
from postflow_webhooks.domain.errors import DetailsUnavailableError
from postflow_webhooks.domain.mapping import ReviewMapping
from postflow_webhooks.domain.records import CommentInfo, FileInfo
from postflow_webhooks.domain.statuses import PostflowStatus
from postflow_webhooks.service.enrichment import BestEffortNames
from tests.unit.test_worker import FlakyDetails, append, build, drain, postflow, v4

pytestmark = pytest.mark.anyio


class CommentingDetails(FlakyDetails):
    """File details that also know comments (a removed one answers None, as a 404 does)."""

    def __init__(self) -> None:
        super().__init__()
        self.comments: dict[str, CommentInfo] = {}

    async def comment(self, comment_id: str, account_id: str | None = None) -> CommentInfo | None:
        """The comment, or None once removed."""
        return self.comments.get(comment_id)


class Names:
    """A name directory: projects and users by id; a project lookup may fail for a while."""

    def __init__(self) -> None:
        self.projects = {"p-film": "Feature Film"}
        self.users = {"u-1": "Ana Lopez"}
        self.failing = False
        self.calls = 0

    async def project_name(self, project_id: str, account_id: str | None = None) -> str | None:
        """The project's name, or the current failure."""
        self.calls += 1
        if self.failing:
            raise DetailsUnavailableError("Frame.io project: HTTP 503")
        return self.projects.get(project_id)

    async def user_name(self, user_id: str, account_id: str | None = None) -> str | None:
        """The user's name, if known."""
        return self.users.get(user_id)


def in_project(
    payload: dict[str, object], project: str = "p-film", user: str = "u-1"
) -> dict[str, object]:
    """``payload`` with the project and user a V4 delivery names."""
    return {**payload, "project": {"id": project}, "user": {"id": user}}


async def test_an_unknown_review_option_is_warned_about_once_and_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A review-field value no option knows decides nothing; one warning, every sighting counted."""
    details = FlakyDetails()
    details.files["f"] = FileInfo(file_id="f", status="transcoded", review_status="Legal Hold")
    mapping = ReviewMapping.with_defaults(
        "Review Stage", (("Changes Requested", PostflowStatus.REJECTED),)
    )
    db, _, worker = build(details, review=mapping)
    caplog.set_level(logging.WARNING, logger="postflow_webhooks.worker")
    await append(db, v4("file.ready", "f"))
    for _ in range(3):
        await append(db, v4("metadata.value.updated", "f"))
    await drain(worker)
    assert worker.unmapped_options == {"Legal Hold": 3}
    assert db.records["f"].status is PostflowStatus.COMPLETED
    warnings = [r.getMessage() for r in caplog.records if "Legal Hold" in r.getMessage()]
    assert (
        len(warnings) == 1 and "'Review Stage'" in warnings[0] and "review_options" in warnings[0]
    )
    details.files["f"] = FileInfo(
        file_id="f", status="transcoded", review_status="changes requested"
    )
    await append(db, v4("metadata.value.updated", "f"))
    await drain(worker)
    assert db.records["f"].status is PostflowStatus.REJECTED


async def test_an_unknown_status_word_is_warned_about_once_and_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """``"status": "weird"`` keeps the file's status; one warning names the word, all are counted."""
    db, _, worker = build()
    caplog.set_level(logging.WARNING, logger="postflow_webhooks.worker")
    await append(db, postflow("file.ready", "w"))
    for _ in range(2):
        await append(db, postflow("file.status.changed", "w", status="weird"))
    await drain(worker)
    assert worker.unknown_statuses == {"weird": 2}
    assert db.records["w"].status is PostflowStatus.COMPLETED
    warnings = [r.getMessage() for r in caplog.records if "'weird'" in r.getMessage()]
    assert len(warnings) == 1
    assert "file w" in warnings[0] and "review_options" in warnings[0]


async def test_notifications_are_queued_for_their_route_with_names() -> None:
    """A file in a routed project: its notification names the project and user, for that route."""
    policy = AnnouncePolicy(enabled=True, routes=(Route("Feature Film"),))
    names = Names()
    db, _, worker = build(FlakyDetails(), announce=policy, directory=names)
    await append(db, in_project(postflow("file.ready", "f-film")))
    await append(db, in_project(postflow("file.ready", "f-other"), project="p-other"))
    await drain(worker)
    (routed,) = await db.due(10, "project:Feature Film")
    assert (routed.file_id, routed.project_name, routed.actor_name) == (
        "f-film",
        "Feature Film",
        "Ana Lopez",
    )
    (other,) = await db.due(10, exclude=["project:Feature Film"])
    assert (other.file_id, other.destination, other.project_name) == ("f-other", "default", None)
    assert db.records["f-film"].project_name == "Feature Film"


async def test_a_project_lookup_frameio_cannot_answer_defers_the_delivery() -> None:
    """Routing may need the project's name: while Frame.io is down the delivery waits, then applies."""
    names = Names()
    names.failing = True
    db, clock, worker = build(FlakyDetails(), directory=names)
    await append(db, in_project(postflow("file.ready", "f")))
    await drain(worker)
    assert "f" not in db.records and len(await db.deferred()) == 1
    names.failing = False
    clock.advance(3600)
    await drain(worker)
    (note,) = await db.due(10)
    assert note.project_name == "Feature Film"


async def test_a_deleted_comment_is_found_on_its_file_through_the_records() -> None:
    """Frame.io no longer has a deleted comment: the records say which file it was on."""
    details = CommentingDetails()
    details.files["f"] = FileInfo(file_id="f", status="transcoded", name="grade.mov")
    details.comments["c1"] = CommentInfo("c1", file_id="f", text="Too warm", author="Bo")
    db, _, worker = build(details, announce=AnnouncePolicy(enabled=True, comments=True))
    comment = {"type": "comment.created", "resource": {"id": "c1", "type": "comment"}}
    await append(db, comment)
    await drain(worker)
    assert (db.records["f"].comment_count, db.records["f"].open_comments) == (1, 1)
    del details.comments["c1"]
    await append(db, {**comment, "type": "comment.deleted"})
    await drain(worker)
    assert (db.records["f"].comment_count, db.records["f"].open_comments) == (0, 0)
    said = [(n.comment_action, n.comment_text) for n in await db.due(10)]
    assert said == [("created", "Too warm"), ("deleted", "Too warm")]


async def test_without_routes_a_project_name_never_holds_a_delivery() -> None:
    """With no route to choose, a project lookup Frame.io cannot answer just leaves the name out."""
    names = Names()
    names.failing = True
    db, _, worker = build(FlakyDetails(), directory=BestEffortNames(names))
    await append(db, in_project(postflow("file.ready", "f")))
    await drain(worker)
    (note,) = await db.due(10)
    assert (note.project_id, note.project_name, note.actor_name) == ("p-film", None, "Ana Lopez")
    assert await db.deferred() == []


async def test_a_deletion_needs_no_names() -> None:
    """A file.deleted is applied even while project lookups fail: nothing will be announced."""
    names = Names()
    db, _, worker = build(FlakyDetails(), directory=names)
    await append(db, in_project(postflow("file.ready", "f")))
    await drain(worker)
    names.failing = True
    await append(db, in_project({"type": "file.deleted", "resource": {"id": "f", "type": "file"}}))
    await drain(worker)
    assert db.records["f"].deleted and await db.deferred() == []
