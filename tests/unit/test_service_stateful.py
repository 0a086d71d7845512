"""The service, run statefully against a plain model written from the issue's rules.

The system is ``apply_event`` over a dict of records, as the worker wires it with
in-memory state, under a studio review mapping drawn for each run. The model is
a dict of small plain values per file (processing rank, review, version,
freshness, deletion, comments) updated by the spec's rules, with its own word
tables, labels and reading of the mapping, never by the domain's code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from postflow_webhooks.adapters.payload import read_payload
from postflow_webhooks.domain.events import WebhookEvent
from postflow_webhooks.domain.mapping import DEFAULT_REVIEW_MAPPING, ReviewMapping
from postflow_webhooks.domain.records import (
    CommentInfo,
    Enrichment,
    FileInfo,
    Notification,
    NotificationKind,
    UploadRecord,
)
from postflow_webhooks.domain.rules import Decision, Outcome, apply_event, target_file_id
from postflow_webhooks.domain.statuses import PostflowStatus
from tests.unit.strategies import OPTION_NAMES, at, review_mappings, spellings

RANKS = ["none", "uploading", "processing", "failed", "ready"]
PROCESSING_LABELS = {
    "none": None,
    "uploading": "UPLOADING 🔄",
    "processing": "PROCESSING ⚙️",
    "failed": "FAILED ❌",
    "ready": "COMPLETED 🎉",
}
REVIEW_LABELS = {
    "needs_review": "WAITING_APPROVAL ⏳",
    "approved": "APPROVED ✅",
    "rejected": "REJECTED 🚫",
}
# The mapping rows, as the model reads them.
PROCESSING_MEANING = {
    "processing": "processing",
    "ready": "ready",
    "failed": "failed",
    "error": "failed",
    "created": "uploading",
    "uploaded": "processing",
    "transcoded": "ready",
}
REVIEW_MEANING = {"needs_review": "needs_review", "approved": "approved", "rejected": "rejected"}
UNMAPPED = ["in_progress", "pending", "none"]
# What a studio option may stand for, in the model's words.
DECISION_OF = {"WAITING_APPROVAL": "needs_review", "APPROVED": "approved", "REJECTED": "rejected"}
COMMENTS = st.sampled_from(["c1", "c2", "c3", "c4"])
TEXTS = st.sampled_from(["note", "too dark", "fixed"])


def folded(text: str) -> str:
    """Case and separators folded, as the issue says options are compared."""
    return "_".join(text.lower().replace("-", " ").replace("_", " ").split())


@dataclass
class ModelComment:
    """One comment: its thread (for a reply), whether resolved, its words, whether seen."""

    thread: str | None = None
    completed: bool = False
    text: str | None = None
    seen: bool = True


FILES = st.sampled_from(["a", "b", "c"])
NO_DETAILS = Enrichment()


@dataclass
class ModelFile:
    """What the spec says one file's state is."""

    rank: int = 0
    review: str | None = None
    version: int = 1
    fresh: bool = False
    deleted: bool = False
    changes: int = 0
    comments: dict[str, ModelComment] = field(default_factory=dict)
    removed: set[str] = field(default_factory=set)
    links: dict[str, str] = field(default_factory=dict)
    name: str | None = None

    def open_threads(self) -> int:
        """Threads not marked complete (replies belong to their thread)."""
        return sum(1 for c in self.comments.values() if c.thread is None and not c.completed)

    def comment(self, action: str, cid: str, text: str | None, parent: str | None) -> bool:
        """Apply a comment event; True when there is news to announce."""
        if cid in self.removed or (parent is not None and parent in self.removed):
            return False
        known = self.comments.get(cid)
        if action == "deleted":
            if known is None:
                self.removed.add(cid)
                return False
            gone = {cid} | {k for k, c in self.comments.items() if c.thread == cid}
            for key in gone:
                del self.comments[key]
            self.removed |= gone
            return True
        if known is None:
            if parent is not None and parent not in self.comments:
                self.comments[parent] = ModelComment(seen=False)
            self.comments[cid] = ModelComment(parent, action == "completed", text)
            return True
        news = not known.seen
        known.seen = True
        if action == "updated" and text is not None and text != known.text:
            news = news or known.text is not None
            known.text = text
        elif known.text is None and text is not None:
            known.text = text
        if action in ("completed", "uncompleted"):
            wanted = action == "completed"
            news = news or known.completed != wanted
            known.completed = wanted
        return news

    def displayed(self) -> str | None:
        """The review decision when there is one, else the processing state."""
        if self.review is not None:
            return REVIEW_LABELS[self.review]
        return PROCESSING_LABELS[RANKS[self.rank]]

    def move(self, processing: str | None = None, review: str | None = None) -> None:
        """Processing forward only; a review decision replaces any other."""
        before = (self.rank, self.review)
        if processing is not None:
            self.rank = max(self.rank, RANKS.index(processing))
        if review is not None:
            self.review = review
        if (self.rank, self.review) != before:
            self.fresh = False

    def read(self, word: str | None, options: dict[str, str | None] | None = None) -> None:
        """Apply what a payload word means: PostFlow's words first, then the studio's options."""
        if word in PROCESSING_MEANING:
            self.move(processing=PROCESSING_MEANING[word])
        elif word in REVIEW_MEANING:
            self.move(review=REVIEW_MEANING[word])
        elif word is not None and options:
            self.decide(options.get(folded(word)))

    def decide(self, decision: str | None) -> None:
        """A review-field option's decision, if it has one."""
        if decision is not None:
            self.move(review=decision)

    def new_version(self, number: int | None) -> None:
        """A versioning: numbered ones count when newer; unnumbered ones unless just done."""
        if number is not None:
            if number <= self.version:
                return
        elif self.fresh:
            return
        else:
            number = self.version + 1
        self.version, self.rank, self.review, self.fresh = number, 2, None, True


Effect = Callable[[ModelFile], None]


def label(status: PostflowStatus | None) -> str | None:
    """A status's label, for comparing with the model's."""
    return None if status is None else status.label


def payload(key: str, name: str, fid: str, wrapped: bool = False, **resource: Any) -> Any:
    """A delivery's JSON; ``key`` is ``type`` (Frame.io) or ``event_type`` (PostFlow)."""
    body = {key: name, "resource": {"id": fid, **resource}}
    return {"data": body} if wrapped else body


class ServiceMachine(RuleBasedStateMachine):
    """Deliveries of every kind, with duplicates, for a few files."""

    def __init__(self) -> None:
        super().__init__()
        self.records: dict[str, UploadRecord] = {}
        self.model: dict[str, ModelFile] = {}
        self.frozen: dict[str, UploadRecord] = {}
        self.sent: list[Notification] = []
        self.clock = 0
        self.last: tuple[WebhookEvent, Enrichment, Effect] | None = None
        self.mapping = DEFAULT_REVIEW_MAPPING
        self.options: dict[str, str | None] = {}
        self.news = False
        self.decision = Decision(Outcome.RECORDED)

    @initialize(mapping=review_mappings())
    def studio(self, mapping: ReviewMapping) -> None:
        """The studio's review mapping for this run, as the model reads its pairs."""
        self.mapping = mapping
        self.options = {}
        for name, status in mapping.options:  # a later pair wins
            self.options[folded(name)] = DECISION_OF[status.name] if status else None

    def deliver(self, body: Any, effect: Effect, enrichment: Enrichment = NO_DETAILS) -> None:
        """Apply one delivery to the system and to the model, and compare what is due."""
        event = read_payload(body)
        self.apply(event, enrichment, effect)

    def apply(self, event: WebhookEvent, enrichment: Enrichment, effect: Effect) -> None:
        """The worker's step, then the model's, then the notifications check."""
        self.last = (event, enrichment, effect)
        self.clock += 1
        fid = target_file_id(event, enrichment)
        assert fid is not None
        decision = apply_event(
            self.records.get(fid),
            event,
            enrichment,
            at=at(self.clock),
            delivery_id=f"d{self.clock}",
            mapping=self.mapping,
        )
        self.decision = decision
        if decision.record is not None:
            self.records[fid] = decision.record
        self.sent.extend(decision.notifications)

        if effect is ignore and fid not in self.model:
            assert decision.record is None
            return
        m = self.model.setdefault(fid, ModelFile())
        before = m.displayed()
        self.news = False
        if not m.deleted:
            effect(m)
        after = m.displayed()
        statuses = [n for n in decision.notifications if n.kind is NotificationKind.STATUS]
        if before != after:
            m.changes += 1
            assert len(statuses) == 1
            note = statuses[0]
            assert (label(note.old_status), label(note.new_status)) == (before, after)
            assert (note.file_id, note.version) == (fid, m.version)
        else:
            assert statuses == []
        comments = [n for n in decision.notifications if n.kind is NotificationKind.COMMENT]
        assert len(comments) == (1 if self.news else 0)
        if m.deleted and fid not in self.frozen:
            self.frozen[fid] = self.records[fid]

    # --- rules: one per kind of delivery ---------------------------------------

    @rule(fid=FILES, name=st.sampled_from(["file.created", "asset.created"]), wrapped=st.booleans())
    def created(self, fid: str, name: str, wrapped: bool) -> None:
        """A created delivery: processing at least uploading."""
        self.deliver(payload("type", name, fid, wrapped), lambda m: m.move("uploading"))

    @rule(fid=FILES, status=st.none() | st.sampled_from(["processing", "ready", "failed"]))
    def upload_completed(self, fid: str, status: str | None) -> None:
        """An upload.completed, as the seed sends it: processing at least processing."""
        extra = {} if status is None else {"status": status}
        self.deliver(
            payload("event_type", "file.upload.completed", fid, **extra),
            lambda m: m.move("processing"),
        )

    @rule(
        fid=FILES,
        name=st.sampled_from(["file.ready", "asset.ready"]),
        wrapped=st.booleans(),
        link=st.none() | st.sampled_from(["https://f.io/1", "https://f.io/2"]),
    )
    def ready(self, fid: str, name: str, wrapped: bool, link: str | None) -> None:
        """A ready delivery: processing ready, keeping the view link when it names one."""
        extra = {} if link is None else {"view_url": link}

        def effect(m: ModelFile) -> None:
            m.move("ready")
            if link is not None:
                m.links["view_url"] = link

        self.deliver(payload("type", name, fid, wrapped, **extra), effect)

    @rule(
        fid=FILES,
        spelled=st.sampled_from([*PROCESSING_MEANING, *REVIEW_MEANING, *UNMAPPED]).flatmap(
            lambda w: st.tuples(st.just(w), spellings(w))
        ),
    )
    def status_changed(self, fid: str, spelled: tuple[str, str]) -> None:
        """A file.status.changed: whatever its word means, processing forward only."""
        word, text = spelled
        self.deliver(
            payload("event_type", "file.status.changed", fid, status=text),
            lambda m: m.read(word, self.options),
        )

    @rule(
        fid=FILES,
        spelled=st.sampled_from([*REVIEW_MEANING, *UNMAPPED]).flatmap(
            lambda w: st.tuples(st.just(w), spellings(w))
        ),
    )
    def review_changed(self, fid: str, spelled: tuple[str, str]) -> None:
        """A review.status.changed: the decision it names replaces any other."""
        word, text = spelled
        self.deliver(
            payload("event_type", "review.status.changed", fid, review_status=text),
            lambda m: m.read(word, self.options),
        )

    @rule(
        fid=FILES,
        name=st.sampled_from(["file.versioned", "asset.versioned"]),
        number=st.none() | st.integers(min_value=1, max_value=6),
    )
    def versioned(self, fid: str, name: str, number: int | None) -> None:
        """A versioning, numbered or not."""
        extra = {} if number is None else {"version": number}
        self.deliver(payload("type", name, fid, **extra), lambda m: m.new_version(number))

    @rule(
        fid=FILES,
        spelled=st.none()
        | st.sampled_from([*OPTION_NAMES, "needs_review", "Legal Hold"]).flatmap(
            lambda w: st.tuples(st.just(w), spellings(folded(w)))
        ),
    )
    def metadata_updated(self, fid: str, spelled: tuple[str, str] | None) -> None:
        """A metadata.value.updated, with or without the review field's value from the API."""
        if spelled is None:
            enrichment, word = Enrichment(), None
        else:
            word, text = spelled
            enrichment = Enrichment(file=FileInfo(file_id=fid, review_status=text))
        self.deliver(
            payload("type", "metadata.value.updated", fid),
            lambda m: m.decide(self.options.get(folded(word))) if word else None,
            enrichment,
        )
        if spelled is not None and self.decision.outcome is not Outcome.IGNORED_DELETED:
            known = folded(spelled[1]) in self.options
            assert self.decision.unmapped_option == (None if known else spelled[1].strip())

    @rule(fid=FILES, label=st.sampled_from(["approved", "needs_review", "in_progress"]))
    def label_updated(self, fid: str, label: str) -> None:
        """A legacy asset.label.updated carrying its label: PostFlow's word, else an option."""
        body = {
            "type": "asset.label.updated",
            "resource": {"type": "asset", "id": fid, "label": label},
            "team": {"id": "t"},
        }

        def effect(m: ModelFile) -> None:
            if label in REVIEW_MEANING:
                m.move(review=REVIEW_MEANING[label])
            else:
                m.decide(self.options.get(folded(label)))

        self.deliver(body, effect)

    @rule(fid=FILES, name=st.sampled_from(["a.mov", "b.mov", "c v2.mov"]))
    def renamed(self, fid: str, name: str) -> None:
        """A V4 file.updated: the API's new name; never a status, even from the API's answer."""
        details = Enrichment(
            file=FileInfo(file_id=fid, name=name, status="transcoded", review_status="Approved")
        )

        def effect(m: ModelFile) -> None:
            m.name = name

        self.deliver(
            payload("type", "file.updated", fid), effect if fid in self.model else ignore, details
        )

    @rule(fid=FILES, name=st.sampled_from(["file.created", "file.versioned", "file.ready"]))
    def version_stack(self, fid: str, name: str) -> None:
        """A delivery about a version stack: no record, no change, nothing announced."""
        decision = apply_event(
            self.records.get(fid),
            read_payload({"type": name, "resource": {"id": fid, "type": "version_stack"}}),
            NO_DETAILS,
            at=at(self.clock),
            delivery_id="vs",
            mapping=self.mapping,
        )
        assert (decision.outcome, decision.record, decision.notifications) == (
            Outcome.UNTRACKED_RESOURCE,
            None,
            (),
        )

    def comment_effect(
        self, action: str, cid: str, text: str | None, parent: str | None = None
    ) -> Effect:
        """The model's side of a comment event; notes whether there is news."""

        def effect(m: ModelFile) -> None:
            self.news = m.comment(action, cid, text, parent)

        return effect

    @rule(
        fid=FILES,
        cid=COMMENTS,
        text=TEXTS,
        parent=st.none() | COMMENTS,
        action=st.sampled_from(["created", "updated", "completed", "uncompleted", "deleted"]),
    )
    def commented(self, fid: str, cid: str, text: str, parent: str | None, action: str) -> None:
        """A PostFlow-dialect comment event: counts, open threads and news as the spec says."""
        if parent == cid:
            parent = None
        extra = {} if parent is None else {"parent_id": parent}
        self.deliver(
            payload("event_type", f"comment.{action}", fid, comment_id=cid, text=text, **extra),
            self.comment_effect(action, cid, text, parent),
        )

    @rule(
        fid=FILES,
        cid=COMMENTS,
        action=st.sampled_from(["created", "completed", "uncompleted", "updated"]),
    )
    def v4_commented(self, fid: str, cid: str, action: str) -> None:
        """A V4 comment event names only the comment; the API says which file it is on."""
        self.deliver(
            {"type": f"comment.{action}", "resource": {"id": cid, "type": "comment"}},
            self.comment_effect(action, cid, "from the API"),
            Enrichment(comment=CommentInfo(comment_id=cid, file_id=fid, text="from the API")),
        )

    @rule(fid=FILES, name=st.sampled_from(["file.deleted", "asset.deleted"]))
    def deleted(self, fid: str, name: str) -> None:
        """A deletion: later deliveries change nothing."""
        self.deliver(payload("type", name, fid), _delete)

    @rule(fid=FILES, name=st.sampled_from(["folder.created", "file.copied", "share.viewed"]))
    def other(self, fid: str, name: str) -> None:
        """An event outside the table: recorded, no effect."""
        self.deliver(payload("type", name, fid), ignore)

    @precondition(lambda self: self.last is not None)
    @rule()
    def redelivered(self) -> None:
        """The last delivery again, as a Frame.io retry would send it."""
        assert self.last is not None
        self.apply(*self.last)

    # --- invariants -----------------------------------------------------------

    @invariant()
    def records_match_the_model(self) -> None:
        """Each file's displayed status, version and deletion are the model's."""
        assert set(self.records) == set(self.model)
        for fid, m in self.model.items():
            record = self.records[fid]
            assert label(record.status) == m.displayed()
            assert (record.version, record.deleted) == (m.version, m.deleted)
            assert record.comment_count == len(m.comments)
            assert record.open_comments == m.open_threads()
            assert dict(record.links) == m.links
            if m.name is not None:
                assert record.name == m.name

    @invariant()
    def history_counts_status_changes(self) -> None:
        """A record's history has one entry per displayed-status change, the last one current."""
        for fid, m in self.model.items():
            history = self.records[fid].history
            assert len(history) == m.changes
            if history:
                assert label(history[-1].new_status) == m.displayed()

    @invariant()
    def deleted_files_never_change(self) -> None:
        """A deleted file's record stays exactly as it was when deleted."""
        for fid, snapshot in self.frozen.items():
            assert self.records[fid] == snapshot

    @invariant()
    def one_status_notification_per_history_entry(self) -> None:
        """Every status notification sent matches one history entry, and vice versa."""
        sent = [n for n in self.sent if n.kind is NotificationKind.STATUS]
        assert len(sent) == sum(len(r.history) for r in self.records.values())


def _delete(m: ModelFile) -> None:
    m.deleted = True


def ignore(m: ModelFile) -> None:
    """An event with no effect on the model."""


ServiceMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
TestService = ServiceMachine.TestCase
