"""Reconciliation against the fake: changes whose deliveries never came are repaired."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from postflow_webhooks.adapters.frameio import (
    FrameioAdapter,
    FrameioClient,
    FrameioFileDetails,
    ImsAuth,
    Reconciler,
    retry_policy,
)
from postflow_webhooks.domain.events import WebhookEvent
from postflow_webhooks.domain.records import Enrichment, UploadRecord
from postflow_webhooks.domain.service import apply_event
from postflow_webhooks.domain.statuses import PostflowStatus
from tests.fakes.fake_frameio import FakeFrameio

pytestmark = pytest.mark.anyio

AT = datetime(2026, 1, 1, tzinfo=UTC)


async def no_sleep(_: float) -> None:
    """A sleep that returns at once."""


@pytest.fixture
def fake() -> Iterator[FakeFrameio]:
    """A running fake Frame.io."""
    with FakeFrameio() as server:
        yield server


@pytest.fixture
async def details(fake: FakeFrameio, tmp_path: Path) -> AsyncIterator[FrameioFileDetails]:
    """File details from the fake, uncached, two attempts per call."""
    config = fake.config(tmp_path)
    auth = ImsAuth(config)
    client = FrameioClient(config, auth, retrying=retry_policy(attempts=2, sleep=no_sleep))
    yield FrameioFileDetails(client, account_id=fake.account_id, cache_ttl=0)
    await client.aclose()
    await auth.aclose()


class Tracker:
    """A dict of records updated through the domain, like the worker would."""

    def __init__(self) -> None:
        self.records: dict[str, UploadRecord] = {}
        self.notified: list[tuple[str, PostflowStatus | None]] = []

    async def apply(self, event: WebhookEvent, enrichment: Enrichment) -> None:
        """Apply one event through ``apply_event`` and keep the result."""
        file_id = event.file_id or ""
        decision = apply_event(
            self.records.get(file_id), event, enrichment, at=AT, delivery_id="reconcile"
        )
        if decision.record is not None:
            self.records[file_id] = decision.record
        self.notified += [(n.file_id, n.new_status) for n in decision.notifications]

    async def unfinished(self) -> Sequence[str]:
        """Files not in a final state (what the lead's store will answer)."""
        final = {PostflowStatus.APPROVED, PostflowStatus.REJECTED}
        return [fid for fid, r in self.records.items() if r.status not in final]


async def seed(tracker: Tracker, file_id: str) -> None:
    """Track a file as COMPLETED, as if file.ready had been delivered."""
    event = WebhookEvent.from_payload({"type": "file.ready", "resource": {"id": file_id}})
    await tracker.apply(event, Enrichment())


async def test_status_change_without_delivery_is_repaired(
    fake: FakeFrameio, details: FrameioFileDetails
) -> None:
    """An approval made in Frame.io, never delivered, reaches the record via reconciliation."""
    tracker = Tracker()
    file_id = fake.add_file("final.mov", status="transcoded")
    await seed(tracker, file_id)
    fake.set_status_field(file_id, "Approved")
    result = await Reconciler(details, account_id=fake.account_id).reconcile(
        await tracker.unfinished()
    )
    assert [event.event_type for event, _ in result.items] == ["postflow.reconciled"]
    for event, enrichment in result.items:
        await tracker.apply(event, enrichment)
    record = tracker.records[file_id]
    assert record.status is PostflowStatus.APPROVED
    assert record.name == "final.mov"
    assert tracker.notified[-1] == (file_id, PostflowStatus.APPROVED)


async def test_processing_progress_is_repaired_forward_only(
    fake: FakeFrameio, details: FrameioFileDetails
) -> None:
    """A missed file.ready is repaired from the file status; an older status never goes back."""
    tracker = Tracker()
    event = WebhookEvent.from_payload({"type": "file.created", "resource": {"id": "f-1"}})
    await tracker.apply(event, Enrichment())
    fake.add_file("a.mov", file_id="f-1", status="transcoded")
    reconciler = Reconciler(details)
    for event, enrichment in (await reconciler.reconcile(["f-1"])).items:
        await tracker.apply(event, enrichment)
    assert tracker.records["f-1"].status is PostflowStatus.COMPLETED
    fake.set_file_status("f-1", "uploaded")
    for event, enrichment in (await reconciler.reconcile(["f-1"])).items:
        await tracker.apply(event, enrichment)
    assert tracker.records["f-1"].status is PostflowStatus.COMPLETED


async def test_gone_and_unavailable_files_are_reported_not_applied(
    fake: FakeFrameio, details: FrameioFileDetails
) -> None:
    """A deleted file is listed as gone; one Frame.io cannot serve now as unavailable."""
    present = fake.add_file("p.mov")
    result = await Reconciler(details).reconcile(["deleted-file", present])
    assert result.gone == ("deleted-file",)
    assert [event.file_id for event, _ in result.items] == [present]
    fake.fail_next(2, status=500)
    result = await Reconciler(details, concurrency=1).reconcile([present])
    assert result.unavailable == (present,) and result.items == ()


async def test_periodic_loop_runs_at_start_then_every_interval(
    fake: FakeFrameio, details: FrameioFileDetails
) -> None:
    """The loop reconciles at once, then after each injected sleep of the interval."""
    tracker = Tracker()
    file_id = fake.add_file(status="transcoded")
    await seed(tracker, file_id)
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        fake.set_status_field(file_id, "Rejected")

    await Reconciler(details).run_periodically(
        tracker.unfinished, tracker.apply, interval=600, sleep=sleep, passes=2
    )
    assert sleeps == [600]
    assert tracker.records[file_id].status is PostflowStatus.REJECTED


async def test_adapter_bundle_wires_details_and_reconciler_from_config(
    fake: FakeFrameio, tmp_path: Path
) -> None:
    """FrameioAdapter built from one config reconciles through the same token and client."""
    adapter = FrameioAdapter(fake.config(tmp_path, details_cache_ttl=0), sleep=no_sleep)
    tracker = Tracker()
    file_id = fake.add_file("bundle.mov", status="transcoded")
    await seed(tracker, file_id)
    fake.set_status_field(file_id, "needs review")
    for event, enrichment in (await adapter.reconciler.reconcile([file_id])).items:
        await tracker.apply(event, enrichment)
    assert tracker.records[file_id].status is PostflowStatus.WAITING_APPROVAL
    assert fake.grants == ["client_credentials"]
    assert adapter.stored_secret() is None
    await adapter.aclose()
