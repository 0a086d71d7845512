"""Reconciliation against the fake: changes whose deliveries never came are repaired."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from postflow_webhooks.adapters.frameio import (
    FrameioAdapter,
    FrameioClient,
    FrameioFileDetails,
    ImsAuth,
    retry_policy,
)
from postflow_webhooks.adapters.memory import FixedClock, MemoryDatabase
from postflow_webhooks.adapters.payload import read_body, read_payload
from postflow_webhooks.app.policies import Policies
from postflow_webhooks.domain.announce import AnnouncePolicy
from postflow_webhooks.domain.ports import FileDetails
from postflow_webhooks.domain.records import Enrichment
from postflow_webhooks.domain.statuses import PostflowStatus
from postflow_webhooks.service.reconcile import Reconciler
from postflow_webhooks.service.worker import DeliveryWorker
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


class Tracked:
    """The in-memory database and the real worker applying to it, as the receiver wires them."""

    def __init__(self) -> None:
        self.db = MemoryDatabase()
        self.worker = DeliveryWorker(
            self.db,
            self.db,
            read_body,
            FixedClock(AT),
            failure_backoff=Policies().worker_failure,
            enrich_backoff=Policies().enrichment,
            announce=AnnouncePolicy(enabled=True),
        )

    def reconciler(self, details: FileDetails, **options: Any) -> Reconciler:
        """A reconciler over these records, applying through the worker."""
        return Reconciler(details, self.db, self.worker.apply_external, **options)

    async def seed(self, file_id: str, event_type: str = "file.ready") -> None:
        """Track a file as if ``event_type`` had been delivered (IDs only, no API)."""
        event = read_payload({"type": event_type, "resource": {"id": file_id}})
        await self.worker.apply_external([(event, Enrichment())])

    def status(self, file_id: str) -> PostflowStatus | None:
        """The displayed status of a tracked file."""
        return self.db.records[file_id].status

    async def announced(self) -> list[tuple[str, PostflowStatus | None]]:
        """The queued notifications, in commit order: (file id, new status)."""
        return [(n.file_id, n.new_status) for n in await self.db.due(100)]


async def approved_without_delivery(fake: FakeFrameio) -> tuple[Tracked, str]:
    """A tracked file, then approved in Frame.io with no delivery saying so."""
    tracked = Tracked()
    file_id = fake.add_file("final.mov", status="transcoded")
    await tracked.seed(file_id)
    fake.set_status_field(file_id, "Approved")
    return tracked, file_id


async def test_status_change_without_delivery_is_repaired(
    fake: FakeFrameio, details: FrameioFileDetails
) -> None:
    """An approval made in Frame.io, never delivered, reaches the record via reconciliation."""
    tracked, file_id = await approved_without_delivery(fake)
    reconciler = tracked.reconciler(details, account_id=fake.account_id)
    assert await reconciler.unsettled() == [file_id]
    result = await reconciler.run_once()
    assert [event.event_type for event, _ in result.items] == ["postflow.reconciled"]
    record = tracked.db.records[file_id]
    assert record.status is PostflowStatus.APPROVED
    assert record.name == "final.mov"
    assert record.history[-1].event_type == "postflow.reconciled"
    assert (await tracked.announced())[-1] == (file_id, PostflowStatus.APPROVED)
    assert await reconciler.unsettled() == []


async def test_without_an_account_passes_wait_until_one_is_given(
    fake: FakeFrameio, details: FrameioFileDetails
) -> None:
    """No account id: a pass looks nothing up; the first one given is kept, a later one is not."""
    tracked, file_id = await approved_without_delivery(fake)
    reconciler = tracked.reconciler(details)
    assert (await reconciler.run_once()).items == ()
    assert fake.calls("GET", file_id) == [] and reconciler.passes == 0
    reconciler.use_account(fake.account_id)
    reconciler.use_account("another-account")
    assert reconciler.account_id == fake.account_id
    assert len((await reconciler.run_once()).items) == 1
    assert tracked.status(file_id) is PostflowStatus.APPROVED


async def test_processing_progress_is_repaired_forward_only(
    fake: FakeFrameio, details: FrameioFileDetails
) -> None:
    """A missed file.ready is repaired from the file status; an older status never goes back."""
    tracked = Tracked()
    await tracked.seed("f-1", "file.created")
    fake.add_file("a.mov", file_id="f-1", status="transcoded")
    reconciler = tracked.reconciler(details, account_id=fake.account_id)
    await reconciler.run_once()
    assert tracked.status("f-1") is PostflowStatus.COMPLETED
    fake.set_file_status("f-1", "uploaded")
    await reconciler.run_once()
    assert tracked.status("f-1") is PostflowStatus.COMPLETED


async def test_gone_and_unavailable_files_are_reported_not_applied(
    fake: FakeFrameio, details: FrameioFileDetails
) -> None:
    """A deleted file is listed as gone; one Frame.io cannot serve now as unavailable."""
    tracked = Tracked()
    present = fake.add_file("p.mov")
    result = await tracked.reconciler(details).reconcile(["deleted-file", present])
    assert result.gone == ("deleted-file",)
    assert [event.file_id for event, _ in result.items] == [present]
    fake.fail_next(2, status=500)
    result = await tracked.reconciler(details, concurrency=1).reconcile([present])
    assert result.unavailable == (present,) and result.items == ()
    assert tracked.db.records == {}


async def test_periodic_loop_runs_at_start_then_every_interval(
    fake: FakeFrameio, details: FrameioFileDetails
) -> None:
    """The loop reconciles at once, then after each injected sleep of the interval."""
    tracked = Tracked()
    file_id = fake.add_file(status="transcoded")
    await tracked.seed(file_id)
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        fake.set_status_field(file_id, "Rejected")

    reconciler = tracked.reconciler(details, account_id=fake.account_id, sleep=sleep)
    await reconciler.run_periodically(interval=600, passes=2)
    assert sleeps == [600]
    assert tracked.status(file_id) is PostflowStatus.REJECTED


async def test_a_failing_pass_does_not_stop_the_loop(
    fake: FakeFrameio, details: FrameioFileDetails
) -> None:
    """A pass whose apply fails is logged; the next pass after the interval still repairs."""
    tracked = Tracked()
    file_id = fake.add_file(status="transcoded")
    await tracked.seed(file_id)
    fake.set_status_field(file_id, "Approved")
    calls: list[int] = []

    async def flaky_apply(items: Any) -> int:
        calls.append(len(items))
        if len(calls) == 1:
            raise OSError("the database is busy (test)")
        return await tracked.worker.apply_external(items)

    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    reconciler = Reconciler(
        details, tracked.db, flaky_apply, account_id=fake.account_id, sleep=sleep
    )
    await reconciler.run_periodically(interval=30, passes=2)
    assert calls == [1, 1] and sleeps == [30]
    assert tracked.status(file_id) is PostflowStatus.APPROVED


async def test_the_adapter_bundle_serves_the_reconciler_from_one_config(
    fake: FakeFrameio, tmp_path: Path
) -> None:
    """FrameioAdapter built from one config reconciles through one token and one client."""
    adapter = FrameioAdapter(fake.config(tmp_path, details_cache_ttl=0), sleep=no_sleep)
    tracked = Tracked()
    file_id = fake.add_file("bundle.mov", status="transcoded")
    await tracked.seed(file_id)
    fake.set_status_field(file_id, "needs review")
    reconciler = tracked.reconciler(adapter.details, account_id=adapter.config.account_id)
    await reconciler.run_once()
    await reconciler.run_once()
    assert tracked.status(file_id) is PostflowStatus.WAITING_APPROVAL
    assert fake.grants == ["client_credentials"]
    assert adapter.stored_secret() is None
    await adapter.aclose()


async def test_names_of_decided_files_are_refreshed_every_few_passes(
    fake: FakeFrameio, details: FrameioFileDetails
) -> None:
    """An approved file renamed without a delivery gets its new name, on every third pass only."""
    tracked = Tracked()
    decided = fake.add_file("cut_v1.mov", status="transcoded", status_field="Approved")
    open_file = fake.add_file("open.mov", status="transcoded")
    for file_id in (decided, open_file):
        await tracked.seed(file_id)
    reconciler = tracked.reconciler(details, account_id=fake.account_id, decided_every=3)
    await reconciler.run_once()
    assert tracked.status(decided) is PostflowStatus.APPROVED
    fake.rename_file(decided, "cut_v1_FINAL.mov")
    looked_up = []
    for _ in range(3):
        before = len(fake.calls("GET", f"/files/{decided}"))
        await reconciler.run_once()
        looked_up.append(len(fake.calls("GET", f"/files/{decided}")) > before)
    assert looked_up == [False, True, False]  # passes 2, 3 and 4: the third of each three
    record = tracked.db.records[decided]
    assert (record.name, record.status) == ("cut_v1_FINAL.mov", PostflowStatus.APPROVED)
