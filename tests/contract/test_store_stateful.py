"""The stateful test over worker, database and tracker sync, against a plain model.

The model applies the same events, in the same order, with the pure rules over
a dict. Whatever the database, the records it holds must equal the model's
after every pass; and once the tracker sync has caught up, PostFlow's tracker
holds exactly the database's records, however often its writes failed.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from postflow_webhooks.adapters.memory import FixedClock, MemoryTracker
from postflow_webhooks.adapters.payload import read_body, read_payload
from postflow_webhooks.app.policies import Policies
from postflow_webhooks.domain.announce import AnnouncePolicy
from postflow_webhooks.domain.journal import IncomingDelivery
from postflow_webhooks.domain.mapping import DEFAULT_REVIEW_MAPPING, ReviewMapping
from postflow_webhooks.domain.records import Enrichment, UploadRecord
from postflow_webhooks.domain.rules import apply_event
from postflow_webhooks.service.tracker_sync import TrackerSync
from postflow_webhooks.service.worker import DeliveryWorker
from tests.contract.databases import (
    Database,
    memory_database,
    postgres_database,
    sqlite_database,
)
from tests.unit.strategies import review_mappings

T0 = datetime(2026, 1, 1, tzinfo=UTC)
FILES = ("f-a", "f-b", "f-c")
STATUS_WORDS = (
    "processing",
    "ready",
    "failed",
    "needs_review",
    "approved",
    "rejected",
    "in_progress",
    "Changes Requested",
    "Client Approved",
    "On Hold",
)
COMMENT_ACTIONS = ("created", "updated", "deleted", "completed", "uncompleted")

payloads = st.one_of(
    st.builds(
        lambda f, s: {
            "event_type": "file.status.changed",
            "resource": {"id": f, "name": f"{f}.mov", "status": s},
        },
        st.sampled_from(FILES),
        st.sampled_from(STATUS_WORDS),
    ),
    st.builds(
        lambda f, s: {
            "event_type": "review.status.changed",
            "resource": {"id": f, "review_status": s},
        },
        st.sampled_from(FILES),
        st.sampled_from(STATUS_WORDS),
    ),
    st.builds(
        lambda f, k: {"type": k, "resource": {"id": f, "type": "file"}},
        st.sampled_from(FILES),
        st.sampled_from(
            [
                "file.created",
                "file.upload.completed",
                "file.ready",
                "file.versioned",
                "file.deleted",
            ]
        ),
    ),
    st.builds(
        lambda f, n, a, p: {
            "event_type": f"comment.{a}",
            "resource": {
                "id": f,
                "comment_id": f"c{n}",
                "text": f"hi {a}",
                **({} if p is None or p == n else {"parent_id": f"c{p}"}),
            },
        },
        st.sampled_from(FILES),
        st.integers(0, 5),
        st.sampled_from(COMMENT_ACTIONS),
        st.none() | st.integers(0, 5),
    ),
    st.builds(
        lambda f, n: {"event_type": "file.updated", "resource": {"id": f, "name": f"{f}-{n}.mov"}},
        st.sampled_from(FILES),
        st.integers(0, 3),
    ),
    st.builds(
        lambda f, k: {"type": k, "resource": {"id": f, "type": "version_stack"}},
        st.sampled_from(FILES),
        st.sampled_from(["file.created", "file.versioned", "file.ready"]),
    ),
    st.just({"type": "folder.created", "resource": {"id": "folder-1", "type": "folder"}}),
)
# Bytes that do not read: the worker quarantines them and the model ignores them.
unreadable = st.sampled_from([b"{broken", b"[]", b'{"type": "file.ready"}'])


class FailingTracker(MemoryTracker):
    """The memory tracker, failing once ``writes_left`` more writes have been taken."""

    def __init__(self) -> None:
        super().__init__()
        self.writes_left: int | None = None

    async def write(self, records: Sequence[UploadRecord]) -> None:
        """Fail when no writes are left, else write as the memory tracker does."""
        if self.writes_left is not None:
            if self.writes_left == 0:
                raise OSError("PostFlow's tracker is unavailable (fake)")
            self.writes_left -= 1
        await super().write(records)


class WorkerMachine(RuleBasedStateMachine):
    """Deliveries go through the worker into a database; the model applies them to a dict."""

    open_database: Callable[[Path], Database]

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.tmp = Path(tempfile.mkdtemp())
        self.db = type(self).open_database(self.tmp)
        self.clock = FixedClock(T0)
        self.tracker = FailingTracker()
        self.model: dict[str, UploadRecord] = {}
        self.quarantined = 0
        self.mapping = DEFAULT_REVIEW_MAPPING
        self._wire()

    @initialize(mapping=review_mappings())
    def studio(self, mapping: ReviewMapping) -> None:
        """The studio's review mapping for this run, given to the worker and the model alike."""
        self.mapping = mapping
        self._wire()

    def _wire(self) -> None:
        """Build the worker and the tracker sync over the database's current roles."""
        policies = Policies()
        self.worker = DeliveryWorker(
            self.db.journal,
            self.db.records,
            read_body,
            self.clock,
            failure_backoff=policies.worker_failure,
            enrich_backoff=policies.enrichment,
            announce=AnnouncePolicy(enabled=True, comments=True),
            review=self.mapping,
            batch_size=3,
        )
        self.sync = TrackerSync(
            self.db.records, self.tracker, backoff=policies.tracker_failure, batch_size=2
        )

    def run(self, coroutine: Any) -> Any:
        """Run a coroutine on this machine's loop."""
        return self.loop.run_until_complete(coroutine)

    def database_records(self) -> dict[str, UploadRecord]:
        """Every record the database holds, by file id."""
        records = self.run(self.db.records.list_records(limit=1_000))
        return {r.file_id: r for r in records}

    def append(self, body: bytes, event_type: str, file_id: str | None) -> str:
        """Commit one delivery, a second after the previous one."""
        self.clock.advance(1)
        delivery_id = uuid.uuid4().hex
        delivery = IncomingDelivery(delivery_id, self.clock.now(), body, event_type, file_id)
        self.run(self.db.journal.append(delivery))
        return delivery_id

    @rule(batch=st.lists(payloads, min_size=1, max_size=5))
    def deliver(self, batch: list[dict[str, Any]]) -> None:
        """Commit some deliveries, then let the worker pass until nothing is due."""
        for payload in batch:
            event = read_payload(payload)
            delivery_id = self.append(json.dumps(payload).encode(), event.event_type, event.file_id)
            if event.file_id is None:
                continue
            decision = apply_event(
                self.model.get(event.file_id),
                event,
                Enrichment(),
                at=self.clock.now(),
                delivery_id=delivery_id,
                mapping=self.mapping,
            )
            if decision.record is not None:
                self.model[decision.record.file_id] = decision.record
        self.work()

    @rule(body=unreadable, file_id=st.sampled_from(FILES))
    def deliver_unreadable(self, body: bytes, file_id: str) -> None:
        """Commit a delivery whose bytes do not read as an event."""
        self.append(body, "file.ready", file_id)
        self.quarantined += 1
        self.work()

    def work(self) -> None:
        """Let the worker pass (three deliveries at most each) until nothing is due."""
        for _ in range(100):
            if not self.run(self.worker.run_once()):
                return
            self.states_on_the_models_path(self.database_records())
        raise AssertionError("the worker kept finding work")

    def states_on_the_models_path(self, records: dict[str, UploadRecord]) -> None:
        """Each record is a state its file passed through in the model: in order, none skipped."""
        for file_id, found in records.items():
            latest = self.model[file_id]
            assert found.history == latest.history[: len(found.history)]
            # Deleted comments only accumulate (counts may go down: a comment can be deleted).
            assert set(found.removed_comments) <= set(latest.removed_comments)

    @rule(writes=st.integers(min_value=0, max_value=2))
    def tracker_fails(self, writes: int) -> None:
        """PostFlow's tracker takes ``writes`` writes, then fails: the catch-up stops there."""
        self.tracker.writes_left = writes
        try:
            self.run(self.sync.catch_up())
        except OSError:
            pass
        self.tracker.writes_left = None

    @rule()
    def catch_up(self) -> None:
        """The tracker sync catches up; then the tracker holds exactly the database's records."""
        self.run(self.sync.catch_up())
        assert self.tracker.records == self.database_records()
        assert self.run(self.sync.catch_up()) == 0

    @rule()
    def restart(self) -> None:
        """Close and reopen the database (a restart); the worker and sync are built anew."""
        self.run(self.db.restart())
        self._wire()

    @invariant()
    def database_matches_model(self) -> None:
        """The database holds exactly the model's records; bad bytes are all in quarantine."""
        stats = self.run(self.db.journal.stats())
        assert (stats.backlog, stats.quarantined) == (0, self.quarantined)
        assert self.database_records() == self.model

    @invariant()
    def the_tracker_holds_only_states_the_database_had(self) -> None:
        """Whatever it lags, every tracker entry is a state its file passed through, in order."""
        self.states_on_the_models_path(self.tracker.records)

    def teardown(self) -> None:
        """Close the database and the loop."""
        try:
            self.run(self.db.close())
            self.loop.close()
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)


@pytest.mark.parametrize(
    "open_database",
    [memory_database, sqlite_database, postgres_database],
    ids=["memory", "sqlite", "postgres"],
)
def test_the_database_and_tracker_hold_exactly_what_the_rules_decided(
    open_database: Callable[[Path], Database],
) -> None:
    """Through either database the records are what the rules decided; the tracker follows."""
    machine = type("Machine", (WorkerMachine,), {"open_database": staticmethod(open_database)})
    machine.TestCase.settings = settings(max_examples=25, stateful_step_count=20, deadline=None)
    machine.TestCase().runTest()
