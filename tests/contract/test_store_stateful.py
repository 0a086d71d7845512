"""The stateful test every upload store passes: worker + store against a plain model.

The model applies the same events, in the same order, with the pure core over
a dict. Whatever the store, the records it holds must equal the model's after
every step: nothing lost, nothing reordered, nothing changed by a round trip.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from postflow_webhooks.adapters.jsonfile import JsonUploadStore
from postflow_webhooks.adapters.memory import FixedClock, MemoryJournal, MemoryUploadStore
from postflow_webhooks.adapters.postflow_tracker import PostflowTrackerStore
from postflow_webhooks.adapters.sqlite import SqliteUploadStore
from postflow_webhooks.app.worker import DeliveryWorker
from postflow_webhooks.domain.events import WebhookEvent
from postflow_webhooks.domain.journal import IncomingDelivery
from postflow_webhooks.domain.ports import UploadStore
from postflow_webhooks.domain.records import Enrichment, UploadRecord
from postflow_webhooks.domain.service import apply_event
from tests.contract.test_upload_store import DictTracker

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
)

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
        lambda f, n: {
            "event_type": "comment.created",
            "resource": {"id": f, "comment_id": f"c{n}", "text": "hi"},
        },
        st.sampled_from(FILES),
        st.integers(0, 5),
    ),
)


def stored(record: UploadRecord) -> UploadRecord:
    """A record without the store's own key."""
    return attrs.evolve(record, upload_id=None)


class StoreMachine(RuleBasedStateMachine):
    """Deliveries go through the worker into a store; the model applies them to a dict."""

    make_store: Any = None

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.tmp = Path(tempfile.mkdtemp())
        self.store: UploadStore = type(self).make_store(self.tmp)
        self.journal = MemoryJournal()
        self.clock = FixedClock(T0)
        self.worker = DeliveryWorker(self.journal, self.store, self.clock)
        self.model: dict[str, UploadRecord] = {}

    def run(self, coroutine: Any) -> Any:
        """Run a coroutine on this machine's loop."""
        return self.loop.run_until_complete(coroutine)

    @rule(batch=st.lists(payloads, min_size=1, max_size=4))
    def deliver(self, batch: list[dict[str, Any]]) -> None:
        """Commit some deliveries, then let the worker make one pass."""
        for payload in batch:
            self.clock.advance(1)
            delivery_id = uuid.uuid4().hex
            event = WebhookEvent.from_payload(payload)
            at = self.clock.now()
            self.run(
                self.journal.append(
                    IncomingDelivery(
                        delivery_id,
                        at,
                        json.dumps(payload).encode(),
                        event.event_type,
                        event.file_id,
                    )
                )
            )
            decision = apply_event(
                self.model.get(event.file_id or ""),
                event,
                Enrichment(),
                at=at,
                delivery_id=delivery_id,
            )
            if decision.record is not None:
                self.model[decision.record.file_id] = decision.record
        self.run(self.worker.run_once())

    @invariant()
    def store_matches_model(self) -> None:
        """Every record in the store equals the model's, and there are no others."""
        found = self.run(self.store.find_many([(f, None) for f in FILES]))
        assert {k: stored(v) for k, v in found.items()} == {
            k: stored(v) for k, v in self.model.items()
        }

    def teardown(self) -> None:
        """Close the store and the loop."""
        self.run(self.store.close())
        self.loop.close()


@pytest.mark.parametrize(
    "make_store",
    [
        lambda tmp: MemoryUploadStore(),
        lambda tmp: SqliteUploadStore(tmp / "db.sqlite3"),
        lambda tmp: JsonUploadStore(tmp / "uploads_tracking.json"),
        lambda tmp: PostflowTrackerStore(DictTracker()),
    ],
    ids=["memory", "sqlite", "json", "postflow-tracker"],
)
def test_store_holds_exactly_what_the_core_decided(make_store: Any) -> None:
    """Through any store, the worker leaves exactly the records the core decided, in order."""
    machine = type("Machine", (StoreMachine,), {"make_store": staticmethod(make_store)})
    machine.TestCase.settings = settings(max_examples=25, stateful_step_count=15, deadline=None)
    machine.TestCase().runTest()
