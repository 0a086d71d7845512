"""The studio's side of the Frame.io API against the fake: review field, names, comments, options."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from postflow_webhooks.adapters.frameio import (
    FrameioClient,
    FrameioDirectory,
    FrameioFileDetails,
    ImsAuth,
    retry_policy,
)
from postflow_webhooks.domain.errors import DetailsUnavailableError
from tests.fakes.fake_frameio import FakeFrameio

pytestmark = pytest.mark.anyio


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.at = datetime(2026, 1, 1, tzinfo=UTC)

    def now(self) -> datetime:
        """The fake now."""
        return self.at


async def no_sleep(_: float) -> None:
    """Retry at once."""


@pytest.fixture
def fake() -> Iterator[FakeFrameio]:
    """A running fake Frame.io."""
    with FakeFrameio() as server:
        yield server


@pytest.fixture
async def client(fake: FakeFrameio, tmp_path: Path) -> AsyncIterator[FrameioClient]:
    """A client of the fake, two attempts per call."""
    config = fake.config(tmp_path)
    auth = ImsAuth(config)
    made = FrameioClient(config, auth, retrying=retry_policy(attempts=2, sleep=no_sleep))
    yield made
    await made.aclose()
    await auth.aclose()


@pytest.mark.parametrize("field", ["Review Stage", "review-stage", "fd-status"])
async def test_the_review_field_is_found_by_name_or_id(
    fake: FakeFrameio, client: FrameioClient, field: str
) -> None:
    """The studio's field is read by its name (any case or separator) or its id."""
    fake.status_field_name = "Review Stage"
    file_id = fake.add_file("a.mov", status_field="Changes Requested", project_id="p-9")
    details = FrameioFileDetails(
        client, account_id=fake.account_id, cache_ttl=0, review_field=field
    )
    info = await details.file(file_id)
    assert info is not None
    assert (info.review_status, info.project_id) == ("Changes Requested", "p-9")


async def test_another_field_of_the_same_file_is_not_taken_for_the_review(
    fake: FakeFrameio, client: FrameioClient
) -> None:
    """With review_field naming a field the file lacks, no review value is read."""
    file_id = fake.add_file("a.mov", status_field="Approved")
    details = FrameioFileDetails(
        client, account_id=fake.account_id, cache_ttl=0, review_field="Approval"
    )
    info = await details.file(file_id)
    assert info is not None and info.review_status is None


async def test_a_reply_and_a_resolution_are_read_from_the_comment(
    fake: FakeFrameio, client: FrameioClient
) -> None:
    """A comment's parent (for a reply) and whether it is completed come from the API."""
    file_id = fake.add_file("a.mov")
    note = fake.add_comment(file_id, "Too warm", author="Bo")
    reply = fake.add_comment(file_id, "Agreed", parent_id=note)
    fake.complete_comment(note)
    details = FrameioFileDetails(client, account_id=fake.account_id, cache_ttl=0)
    found_note, found_reply = await details.comment(note), await details.comment(reply)
    assert found_note is not None and found_reply is not None
    assert (found_note.completed, found_note.parent_id, found_note.author) == (True, None, "Bo")
    assert (found_reply.completed, found_reply.parent_id) == (False, note)
    fake.remove_comment(note)
    assert await details.comment(note) is None


async def test_names_are_looked_up_once_per_ttl(fake: FakeFrameio, client: FrameioClient) -> None:
    """A project's and a user's name cost one call each until the cache expires."""
    clock = Clock()
    fake.projects["p-film"] = "Feature Film"
    fake.users["u-1"] = "Ana Lopez"
    names = FrameioDirectory(client, account_id=fake.account_id, ttl=60, clock=clock)
    for _ in range(3):
        assert await names.project_name("p-film") == "Feature Film"
        assert await names.user_name("u-1") == "Ana Lopez"
    assert len(fake.calls("GET", "/projects/p-film")) == 1
    assert len(fake.calls("GET", "/users/u-1")) == 1
    fake.projects["p-film"] = "Feature Film (2026)"
    clock.at += timedelta(seconds=61)
    assert await names.project_name("p-film") == "Feature Film (2026)"
    assert await names.project_name("p-unknown") is None


async def test_a_user_name_is_a_nicety_and_never_fails(
    fake: FakeFrameio, client: FrameioClient
) -> None:
    """An unknown user, or Frame.io down, gives no name; never an error."""
    names = FrameioDirectory(client, account_id=fake.account_id, clock=Clock())
    assert await names.user_name("u-nobody") is None
    fake.fail_next(10, 503)
    assert await names.user_name("u-2") is None


async def test_a_project_frameio_cannot_answer_now_raises_for_a_later_try(
    fake: FakeFrameio, client: FrameioClient
) -> None:
    """A 503 on the project is DetailsUnavailableError (the delivery waits); a 403 is no name."""
    names = FrameioDirectory(client, account_id=fake.account_id, clock=Clock())
    fake.fail_next(2, 503)
    with pytest.raises(DetailsUnavailableError):
        await names.project_name("project-1")
    fake.fail_next(1, 403)
    assert await names.project_name("project-1") is None


async def test_the_fields_options_are_listed(fake: FakeFrameio, client: FrameioClient) -> None:
    """field_options finds the account's field by name or id and lists its options."""
    fake.status_field_name = "Review Stage"
    fake.review_options = ["Needs Review", "Changes Requested", "Final"]
    names = FrameioDirectory(client, account_id=fake.account_id)
    expected = ("Review Stage", ["Needs Review", "Changes Requested", "Final"])
    assert await names.field_options("review stage") == expected
    assert await names.field_options("fd-status") == expected
    assert await names.field_options("Approval") is None
