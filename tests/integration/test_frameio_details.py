"""Enrichment of V4 IDs-only deliveries through the fake Frame.io and the pure domain."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from postflow_webhooks.adapters.frameio import (
    FrameioClient,
    FrameioFileDetails,
    ImsAuth,
    retry_policy,
)
from postflow_webhooks.adapters.payload import read_payload
from postflow_webhooks.domain.errors import DetailsUnavailableError
from postflow_webhooks.domain.records import Enrichment, UploadRecord
from postflow_webhooks.domain.rules import apply_event
from postflow_webhooks.domain.statuses import PostflowStatus
from postflow_webhooks.service.enrichment import enrich
from tests.fakes.fake_frameio import FakeFrameio

pytestmark = pytest.mark.anyio

AT = datetime(2026, 1, 1, tzinfo=UTC)


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.at = AT

    def now(self) -> datetime:
        """The fake now."""
        return self.at


class Waits:
    """An injected sleep that records what it was asked to wait."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        """Record the wait and return at once."""
        self.waits.append(seconds)


@pytest.fixture
def fake() -> Iterator[FakeFrameio]:
    """A running fake Frame.io."""
    with FakeFrameio() as server:
        yield server


@pytest.fixture
def waits() -> Waits:
    """The recorded sleeps of the retry policy."""
    return Waits()


@pytest.fixture
def clock() -> FakeClock:
    """The details cache's clock."""
    return FakeClock()


@pytest.fixture
async def details(
    fake: FakeFrameio, tmp_path: Path, waits: Waits, clock: FakeClock
) -> AsyncIterator[FrameioFileDetails]:
    """The adapter wired to the fake, with three attempts and a recording sleep."""
    config = fake.config(tmp_path)
    auth = ImsAuth(config)
    client = FrameioClient(config, auth, retrying=retry_policy(attempts=3, sleep=waits))
    yield FrameioFileDetails(client, account_id=fake.account_id, cache_ttl=5, clock=clock)
    await client.aclose()
    await auth.aclose()


async def deliver(
    fake: FakeFrameio,
    details: FrameioFileDetails,
    record: UploadRecord | None,
    event_type: str,
    resource_id: str,
    resource_type: str = "file",
) -> UploadRecord:
    """Run one V4 delivery through parsing, enrichment and the domain; the new record."""
    details.forget()
    payload = json.loads(fake.payload(event_type, resource_id, resource_type))
    event = read_payload(payload)
    enrichment = await enrich(details, event)
    decision = apply_event(record, event, enrichment, at=AT, delivery_id=f"d-{event_type}")
    result = decision.record or record
    assert result is not None
    return result


async def test_file_created_is_uploading_with_name_and_view_link(
    fake: FakeFrameio, details: FrameioFileDetails
) -> None:
    """file.created: UPLOADING, and the API supplies the name and view URL."""
    file_id = fake.add_file("interview.mov", status="created")
    record = await deliver(fake, details, None, "file.created", file_id)
    assert record.status is PostflowStatus.UPLOADING
    assert record.name == "interview.mov"
    assert record.view_url is not None and file_id in record.view_url


async def test_upload_completed_then_ready_reach_completed_with_media_link(
    fake: FakeFrameio, details: FrameioFileDetails
) -> None:
    """file.upload.completed: PROCESSING; file.ready: COMPLETED with the original media link."""
    file_id = fake.add_file("a.mov", status="uploaded")
    record = await deliver(fake, details, None, "file.upload.completed", file_id)
    assert record.status is PostflowStatus.PROCESSING
    fake.set_file_status(file_id, "transcoded")
    record = await deliver(fake, details, record, "file.ready", file_id)
    assert record.status is PostflowStatus.COMPLETED
    assert dict(record.links)["original_url"].endswith("/original.mov")


async def test_review_decision_is_read_from_the_status_field(
    fake: FakeFrameio, details: FrameioFileDetails
) -> None:
    """metadata.value.updated: the Status select field decides, matched case/space-insensitively."""
    fake.status_field_name = "  STATUS "
    file_id = fake.add_file("cut.mov", status="transcoded")
    record = await deliver(fake, details, None, "file.ready", file_id)
    fake.set_status_field(file_id, "Needs Review")
    record = await deliver(fake, details, record, "metadata.value.updated", file_id)
    assert record.status is PostflowStatus.WAITING_APPROVAL
    fake.set_status_field(file_id, "Approved")
    record = await deliver(fake, details, record, "metadata.value.updated", file_id)
    assert record.status is PostflowStatus.APPROVED
    assert [h.new_status for h in record.history][-2:] == [
        PostflowStatus.WAITING_APPROVAL,
        PostflowStatus.APPROVED,
    ]


async def test_in_progress_status_field_decides_nothing(
    fake: FakeFrameio, details: FrameioFileDetails
) -> None:
    """An unmapped Status option ("In Progress") leaves the displayed status alone."""
    file_id = fake.add_file(status="transcoded")
    record = await deliver(fake, details, None, "file.ready", file_id)
    fake.set_status_field(file_id, "In Progress")
    record = await deliver(fake, details, record, "metadata.value.updated", file_id)
    assert record.status is PostflowStatus.COMPLETED


async def test_file_versioned_starts_a_new_version(
    fake: FakeFrameio, details: FrameioFileDetails
) -> None:
    """file.versioned after an approval: PROCESSING again, version 2, review cleared."""
    file_id = fake.add_file(status="transcoded")
    fake.set_status_field(file_id, "Approved")
    record = await deliver(fake, details, None, "metadata.value.updated", file_id)
    assert record.status is PostflowStatus.APPROVED
    record = await deliver(fake, details, record, "file.versioned", file_id)
    assert record.status is PostflowStatus.PROCESSING
    assert record.version == 2


async def test_comment_created_records_text_author_and_file(
    fake: FakeFrameio, details: FrameioFileDetails
) -> None:
    """comment.created on a comment resource: text and author from the API, on its file."""
    file_id = fake.add_file("b.mov", status="transcoded")
    record = await deliver(fake, details, None, "file.ready", file_id)
    comment_id = fake.add_comment(file_id, "Trim the intro", author="Ana")
    record = await deliver(fake, details, record, "comment.created", comment_id, "comment")
    assert record.file_id == file_id
    assert record.comment_count == 1
    assert record.last_comment is not None
    assert (record.last_comment.text, record.last_comment.author) == ("Trim the intro", "Ana")
    assert record.status is PostflowStatus.COMPLETED


async def test_outage_raises_details_unavailable_then_recovers(
    fake: FakeFrameio, details: FrameioFileDetails, waits: Waits
) -> None:
    """5xx burst: bounded retries with the injected sleep, DetailsUnavailableError, then success."""
    file_id = fake.add_file("c.mov")
    fake.fail_next(10, status=503)
    with pytest.raises(DetailsUnavailableError, match="503"):
        await details.file(file_id)
    assert len(waits.waits) == 2
    assert len(fake.calls("GET", file_id)) == 3
    fake.recover()
    info = await details.file(file_id)
    assert info is not None and info.name == "c.mov"


async def test_short_burst_is_absorbed_by_retries(
    fake: FakeFrameio, details: FrameioFileDetails, waits: Waits
) -> None:
    """Two 502s then success: the caller never sees the failure."""
    file_id = fake.add_file("d.mov")
    fake.fail_next(2, status=502)
    info = await details.file(file_id)
    assert info is not None and info.name == "d.mov"
    assert len(waits.waits) == 2


async def test_rate_limit_waits_retry_after(
    fake: FakeFrameio, details: FrameioFileDetails, waits: Waits
) -> None:
    """429 with Retry-After: 7 makes the client wait exactly 7 s (injected) and retry."""
    file_id = fake.add_file()
    fake.rate_limit_next(1, retry_after=7)
    assert await details.file(file_id) is not None
    assert waits.waits == [7.0]


async def test_missing_file_and_comment_are_none(
    fake: FakeFrameio, details: FrameioFileDetails
) -> None:
    """A 404 means gone: None, not an error."""
    assert await details.file("no-such-file") is None
    assert await details.comment("no-such-comment") is None


async def test_answers_are_cached_briefly_and_shared(
    fake: FakeFrameio, details: FrameioFileDetails, clock: FakeClock
) -> None:
    """Concurrent and repeated lookups within the TTL cost one fetch; after it, a new one."""
    file_id = fake.add_file()
    await asyncio.gather(*(details.file(file_id) for _ in range(5)))
    await details.file(file_id)
    assert len(fake.calls("GET", f"files/{file_id}/metadata")) == 1
    clock.at += timedelta(seconds=6)
    await details.file(file_id)
    assert len(fake.calls("GET", f"files/{file_id}/metadata")) == 2


async def test_without_api_processing_states_still_come_from_event_types() -> None:
    """No credentials: V4 events still move processing; a review decision cannot be read."""
    record = None
    for event_type in ("file.created", "file.upload.completed", "file.ready"):
        payload = {"type": event_type, "resource": {"id": "f1", "type": "file"}}
        event = read_payload(payload)
        record = apply_event(record, event, Enrichment(), at=AT, delivery_id=event_type).record
    assert record is not None and record.status is PostflowStatus.COMPLETED
    event = read_payload({"type": "metadata.value.updated", "resource": {"id": "f1"}})
    decision = apply_event(record, event, Enrichment(), at=AT, delivery_id="m")
    assert decision.record is None


async def test_a_review_decision_right_after_a_lookup_is_not_hidden_by_the_cache(
    fake: FakeFrameio, details: FrameioFileDetails
) -> None:
    """metadata.value.updated always re-reads the file, even within the cache TTL."""
    file_id = fake.add_file(status="uploaded")
    payload = json.loads(fake.payload("file.upload.completed", file_id))
    event = read_payload(payload)
    record = apply_event(None, event, await enrich(details, event), at=AT, delivery_id="1").record
    fake.set_status_field(file_id, "Rejected")
    event = read_payload(json.loads(fake.payload("metadata.value.updated", file_id)))
    decision = apply_event(record, event, await enrich(details, event), at=AT, delivery_id="2")
    assert decision.record is not None and decision.record.status is PostflowStatus.REJECTED
