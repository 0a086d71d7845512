"""A comment's life on a file: exact counts, open threads, the last comment, what is said."""

from __future__ import annotations

from typing import Any

from postflow_webhooks.adapters.payload import read_payload
from postflow_webhooks.domain.records import (
    CommentInfo,
    Enrichment,
    NotificationKind,
    UploadRecord,
)
from postflow_webhooks.domain.rules import Decision, apply_event
from tests.unit.strategies import at

NOTHING = Enrichment()


class File:
    """One file's record, fed comment events one after another."""

    def __init__(self) -> None:
        self.record: UploadRecord | None = None
        self.said: list[tuple[str | None, str | None]] = []
        self.n = 0

    def event(
        self,
        action: str,
        cid: str,
        text: str | None = None,
        enrichment: Enrichment = NOTHING,
        **extra: Any,
    ) -> Decision:
        """Apply ``comment.<action>`` about comment ``cid`` on file f; keep what it announces."""
        self.n += 1
        resource = {"id": "f", "comment_id": cid, **({"text": text} if text else {}), **extra}
        event = read_payload({"event_type": f"comment.{action}", "resource": resource})
        decision = apply_event(
            self.record, event, enrichment, at=at(self.n), delivery_id=f"d{self.n}"
        )
        if decision.record is not None:
            self.record = decision.record
        self.said += [
            (n.comment_action, n.comment_text)
            for n in decision.notifications
            if n.kind is NotificationKind.COMMENT
        ]
        return decision

    @property
    def counts(self) -> tuple[int, int]:
        """(comments on the file, open threads)."""
        assert self.record is not None
        return self.record.comment_count, self.record.open_comments


def test_resolving_a_note_closes_it_and_reopening_opens_it_again() -> None:
    """completed lowers the open count, uncompleted raises it; the count of comments stays."""
    f = File()
    f.event("created", "c1", "too dark")
    f.event("created", "c2", "logo missing")
    assert f.counts == (2, 2)
    f.event("completed", "c1")
    assert f.counts == (2, 1)
    f.event("completed", "c1")
    assert f.counts == (2, 1)
    f.event("uncompleted", "c1")
    assert f.counts == (2, 2)
    assert f.said == [
        ("created", "too dark"),
        ("created", "logo missing"),
        ("completed", None),
        ("uncompleted", None),
    ]


def test_replies_count_as_comments_but_belong_to_their_thread() -> None:
    """A reply adds a comment, not an open note; resolving the thread settles it all."""
    f = File()
    f.event("created", "c1", "too dark")
    f.event("created", "r1", "agreed", parent_id="c1")
    f.event("created", "r2", "fixed in v4", parent_id="c1")
    assert f.counts == (3, 1)
    f.event("completed", "c1")
    assert f.counts == (3, 0)


def test_deleting_a_thread_deletes_its_replies_and_nothing_brings_them_back() -> None:
    """comment.deleted removes the thread with its replies; late events about them change nothing."""
    f = File()
    f.event("created", "c1", "too dark")
    f.event("created", "r1", "agreed", parent_id="c1")
    f.event("created", "c2", "logo")
    f.event("deleted", "c1")
    assert f.counts == (1, 1)
    for late in (
        f.event("created", "c1", "too dark"),
        f.event("updated", "r1", "still agreed"),
        f.event("created", "r3", "me too", parent_id="c1"),
        f.event("completed", "c1"),
    ):
        assert late.record is None and late.notifications == ()
    assert f.counts == (1, 1)
    assert f.said[-1] == ("deleted", "too dark")


def test_the_last_comment_is_the_newest_still_there() -> None:
    """Deleting the newest comment makes the one before it the last comment again."""
    f = File()
    f.event("created", "c1", "first")
    f.event("created", "c2", "second")
    assert f.record is not None and f.record.last_comment is not None
    assert f.record.last_comment.text == "second"
    f.event("deleted", "c2")
    assert f.record.last_comment is not None and f.record.last_comment.text == "first"
    f.event("deleted", "c1")
    assert f.record.last_comment is None and f.counts == (0, 0)


def test_an_edit_changes_the_words_once() -> None:
    """comment.updated replaces the text and says so; the same edit again says nothing."""
    f = File()
    f.event("created", "c1", "too dark")
    f.event("updated", "c1", "a bit too dark")
    f.event("updated", "c1", "a bit too dark")
    assert f.record is not None and f.record.last_comment is not None
    assert f.record.last_comment.text == "a bit too dark"
    assert f.said == [("created", "too dark"), ("updated", "a bit too dark")]


def test_a_late_created_never_undoes_an_edit_or_a_resolution() -> None:
    """A redelivered comment.created after an edit and a resolution changes nothing."""
    f = File()
    f.event("created", "c1", "too dark")
    f.event("updated", "c1", "fixed?")
    f.event("completed", "c1")
    assert f.event("created", "c1", "too dark").record is None
    assert f.counts == (1, 0)
    assert f.record is not None and f.record.last_comment is not None
    assert f.record.last_comment.text == "fixed?"


def test_events_about_a_comment_we_never_saw_created_still_count_it() -> None:
    """A resolution of an unknown note adds it, resolved; a reply to an unknown thread opens it."""
    f = File()
    f.event("completed", "c9", "old note")
    assert f.counts == (1, 0)
    f.event("created", "r1", "see above", parent_id="t-unknown")
    assert f.counts == (3, 1)
    f.event("created", "t-unknown", "the thread itself")
    assert f.counts == (3, 1)
    assert f.said[-1] == ("created", "the thread itself")


def test_deleting_a_comment_we_never_knew_says_nothing_but_is_remembered() -> None:
    """An unknown comment's deletion announces nothing, and its late creation stays ignored."""
    f = File()
    f.event("created", "c1", "kept")
    f.event("deleted", "c-gone")
    assert f.said == [("created", "kept")]
    assert f.event("created", "c-gone", "late").record is None
    assert f.counts == (1, 1)


def test_a_v4_comment_event_is_counted_on_the_file_the_api_names() -> None:
    """An IDs-only comment.completed finds its file and thread through the API's answer."""
    event = read_payload({"type": "comment.completed", "resource": {"id": "c1", "type": "comment"}})
    found = Enrichment(comment=CommentInfo("c1", file_id="f-7", text="too dark", author="Bo"))
    decision = apply_event(None, event, found, at=at(1), delivery_id="d1")
    assert decision.record is not None
    assert (
        decision.record.file_id,
        decision.record.comment_count,
        decision.record.open_comments,
    ) == (
        "f-7",
        1,
        0,
    )
    (said,) = decision.notifications
    assert (said.comment_action, said.comment_author, said.open_comments) == ("completed", "Bo", 0)
