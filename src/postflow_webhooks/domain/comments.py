"""The rules of a comment's life on a file: created, edited, resolved, reopened, deleted.

A record keeps every comment it knows (``CommentEntry``) and the keys of
those deleted (so a late redelivery cannot bring one back). From them follow
the figures people read:

* ``comment_count``: the comments on the file now, replies included;
* ``open_comments``: the threads not marked complete. A reply belongs to its
  thread: it is counted in ``comment_count`` but never opens anything itself,
  completing a thread settles its replies with it, and deleting a thread
  deletes its replies;
* ``last_comment``: the newest comment still there.

Every rule is "set to" or "add if absent", so a redelivered event changes
nothing the second time, and a deleted comment stays deleted whatever
arrives late about it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import attrs

from postflow_webhooks.domain.events import CommentAction, EventKind, WebhookEvent
from postflow_webhooks.domain.records import (
    COMMENT_TEXT_LIMIT,
    REMOVED_COMMENTS_LIMIT,
    CommentEntry,
    Enrichment,
    LastComment,
    UploadRecord,
)


@attrs.frozen
class CommentFacts:
    """What one comment event says, from the payload and the API together."""

    action: CommentAction
    key: str
    thread: str | None
    text: str | None
    author: str | None


@attrs.frozen
class CommentChange:
    """The record's new comment fields, and what to announce (``None``: nothing to say)."""

    fields: dict[str, Any]
    announce: CommentAction | None
    text: str | None
    author: str | None


def comment_key(comment_id: str | None, author: str | None, text: str | None) -> str:
    """How a comment is known: by its id, else by its author and words."""
    return f"id:{comment_id}" if comment_id else f"text:{author}:{text}"


def comment_facts(event: WebhookEvent, enrichment: Enrichment) -> CommentFacts | None:
    """The comment an event is about; ``None`` for other events."""
    if event.kind is not EventKind.COMMENT or event.comment is None:
        return None
    said = event.comment
    text, author, comment_id, parent = said.text, said.author, said.comment_id, said.parent_id
    found = enrichment.comment
    if found is not None:
        text = found.text or text
        author = found.author or author
        comment_id = found.comment_id or comment_id
        parent = found.parent_id or parent
    thread = comment_key(parent, None, None) if parent else None
    return CommentFacts(said.action, comment_key(comment_id, author, text), thread, text, author)


def apply_comment(record: UploadRecord, facts: CommentFacts, at: datetime) -> CommentChange | None:
    """The record's comment fields after ``facts``; ``None`` when nothing changes."""
    if facts.key in record.removed_comments or facts.thread in record.removed_comments:
        return None  # deleted, or a reply in a thread already deleted: gone with it
    entries = list(record.comments)
    removed = record.removed_comments
    known = _index(entries)
    action = facts.action
    announce: CommentAction | None = action
    text, author = facts.text, facts.author
    if action is CommentAction.DELETED:
        gone = {facts.key} | {e.key for e in entries if e.thread == facts.key}
        if facts.key in known:
            entry = entries[known[facts.key]]
            text, author = text or entry.text, author or entry.author
        else:
            announce = None  # a comment we never knew: remember it is gone, say nothing
        entries = [e for e in entries if e.key not in gone]
        removed = (*removed, *sorted(gone - set(removed)))[-REMOVED_COMMENTS_LIMIT:]
    elif facts.key in known:
        index = known[facts.key]
        entry = entries[index]
        updated = _revised(entry, facts, at)
        if updated == entry:
            return None
        announce = _news(entry, updated, action)
        entries[index] = updated
    else:
        if facts.thread is not None and facts.thread not in known:
            entries.append(CommentEntry(key=facts.thread))
        entries.append(
            CommentEntry(
                key=facts.key,
                thread=facts.thread,
                completed=action is CommentAction.COMPLETED,
                text=_cut(facts.text),
                author=facts.author,
                at=at,
            )
        )
    return CommentChange(_figures(tuple(entries), removed), announce, text, author)


def _revised(entry: CommentEntry, facts: CommentFacts, at: datetime) -> CommentEntry:
    """An entry we know, after this event."""
    action = facts.action
    changes: dict[str, Any] = {}
    if entry.at is None and action is not CommentAction.DELETED:
        # A thread known only through its replies: now we hear of it.
        changes["at"] = at
    rewritten = action is CommentAction.UPDATED or entry.text is None
    if rewritten and facts.text is not None and _cut(facts.text) != entry.text:
        changes["text"] = _cut(facts.text)
    if facts.author is not None and entry.author is None:
        changes["author"] = facts.author
    if action is CommentAction.COMPLETED:
        changes["completed"] = True
    elif action is CommentAction.UNCOMPLETED:
        changes["completed"] = False
    return attrs.evolve(entry, **changes) if changes else entry


def _news(before: CommentEntry, after: CommentEntry, action: CommentAction) -> CommentAction | None:
    """What is worth saying about a known comment that changed; details filled in are not."""
    if before.at is None:
        # First we hear of a thread we only knew through its replies.
        if action in (CommentAction.CREATED, CommentAction.UPDATED):
            return CommentAction.CREATED
        return action
    if action is CommentAction.UPDATED and after.text != before.text:
        return action
    if action in (CommentAction.COMPLETED, CommentAction.UNCOMPLETED):
        return action if after.completed != before.completed else None
    return None


def _figures(entries: tuple[CommentEntry, ...], removed: tuple[str, ...]) -> dict[str, Any]:
    """The comment fields of a record holding ``entries``."""
    return {
        "comments": entries,
        "removed_comments": removed,
        "comment_count": len(entries),
        "open_comments": sum(1 for e in entries if e.is_thread and not e.completed),
        "last_comment": last_comment(entries),
    }


def last_comment(entries: tuple[CommentEntry, ...]) -> LastComment | None:
    """The newest comment we saw written (threads known only through replies do not count)."""
    for entry in reversed(entries):
        if entry.at is not None:
            return LastComment(text=entry.text, author=entry.author, at=entry.at)
    return None


def _index(entries: list[CommentEntry]) -> dict[str, int]:
    return {entry.key: index for index, entry in enumerate(entries)}


def _cut(text: str | None) -> str | None:
    if text is None or len(text) <= COMMENT_TEXT_LIMIT:
        return text
    return text[: COMMENT_TEXT_LIMIT - 1] + "…"
