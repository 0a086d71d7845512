"""Two contracts for tracked files: the database's RecordStore and TrackerFeed, and the Tracker.

The record side runs against the memory database and SQLite; records reach it
the one way they do in production, through the queue's commit. The tracker side
runs against the memory tracker, PostFlow's JSON file and PostFlow's live
``UploadTracker`` (a fake written from PostFlow 4.3's behaviour).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from postflow_webhooks.adapters.memory import MemoryTracker
from postflow_webhooks.adapters.serialization import from_plain
from postflow_webhooks.adapters.tracker import JsonTracker, PostflowTracker
from postflow_webhooks.domain.errors import StorageError
from postflow_webhooks.domain.journal import BatchResult
from postflow_webhooks.domain.ports import Tracker
from postflow_webhooks.domain.records import (
    CommentEntry,
    HistoryEntry,
    LastComment,
    UploadRecord,
)
from postflow_webhooks.domain.statuses import PostflowStatus, Processing, Review, axes_for
from tests.contract.databases import (
    Database,
    memory_database,
    postgres_database,
    sqlite_database,
)
from tests.fakes.postflow import UploadStatus
from tests.fakes.postflow import UploadTracker as FakeUploadTracker

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def record(file_id: str, minutes: int = 0, **changes: Any) -> UploadRecord:
    """A record changed ``minutes`` after T0."""
    at = T0 + timedelta(minutes=minutes)
    return attrs.evolve(UploadRecord.new(file_id, at, name=f"{file_id}.mov"), **changes)


def rich(file_id: str = "f1") -> UploadRecord:
    """A record using every field: both axes, version, links, comments, history."""
    return record(
        file_id,
        processing=Processing.READY,
        review=Review.APPROVED,
        version=3,
        version_fresh=True,
        links=(("download_url", "https://f.io/d"), ("view_url", "https://f.io/x")),
        project_id="p-1",
        project_name="Feature Film",
        comment_count=3,
        open_comments=1,
        comments=(
            CommentEntry("id:c1", completed=True, text="too dark", author="Bo", at=T0),
            CommentEntry("id:c2", thread="id:c1", text="fixed", author="Ana", at=T0),
            CommentEntry("text:Ana:nice", text="nice", author="Ana", at=T0),
        ),
        removed_comments=("id:c0",),
        last_comment=LastComment("nice", "Ana", T0),
        history=(
            HistoryEntry(T0, "file.ready", "d1", None, PostflowStatus.COMPLETED, 3),
            HistoryEntry(
                T0,
                "review.status.changed",
                "d2",
                PostflowStatus.COMPLETED,
                PostflowStatus.APPROVED,
                3,
            ),
        ),
        updated_at=T0 + timedelta(minutes=5),
    )


# --- RecordStore and TrackerFeed -------------------------------------------------------


async def commit(db: Database, *records: UploadRecord) -> None:
    """Commit records the way a worker pass does."""
    await db.journal.commit(BatchResult(at=T0, records=records))


async def drain(db: Database, limit: int) -> list[list[UploadRecord]]:
    """Read every change after the tracker mark in batches of ``limit``, moving the mark."""
    batches = []
    while True:
        mark = await db.records.tracker_mark()
        changed, new_mark = await db.records.changed_since(mark, limit)
        if not changed:
            assert new_mark == mark
            return batches
        assert new_mark > mark
        await db.records.set_tracker_mark(new_mark)
        batches.append(changed)


class RecordStoreContract:
    """What every database must do with the tracked files."""

    open_database: Callable[[Path], Database]

    @pytest.fixture
    async def db(self, tmp_path: Path) -> AsyncIterator[Database]:
        """A fresh database, closed after the test."""
        opened = type(self).open_database(tmp_path)
        yield opened
        await opened.close()

    @pytest.mark.anyio
    async def test_a_committed_record_is_found_unchanged(self, db: Database) -> None:
        """A record committed by a pass comes back equal, history and comments included."""
        await commit(db, rich())
        assert await db.records.find("f1") == rich()
        assert await db.records.find_many(["f1"]) == {"f1": rich()}

    @pytest.mark.anyio
    async def test_an_unknown_file_is_not_found(self, db: Database) -> None:
        """find answers None and find_many leaves out a file never committed."""
        await commit(db, record("a"))
        assert await db.records.find("nope") is None
        assert await db.records.find_many(["nope", "a", "a"]) == {"a": record("a")}
        assert await db.records.find_many([]) == {}

    @pytest.mark.anyio
    async def test_committing_again_replaces_the_record(self, db: Database) -> None:
        """A second commit of the same file replaces the first."""
        await commit(db, record("f1"))
        await commit(db, record("f1", 5, processing=Processing.PROCESSING))
        found = await db.records.find("f1")
        assert found is not None and found.processing is Processing.PROCESSING
        assert await db.records.count() == 1

    @pytest.mark.anyio
    async def test_a_comment_leads_to_its_file_live_or_deleted(self, db: Database) -> None:
        """find_by_comment finds the file of a comment it holds or deleted, and only that one."""
        await commit(db, rich("f1"), record("f2", comment_count=1), record("f3"))
        assert (await db.records.find_by_comment("id:c2")) == rich("f1")
        assert (await db.records.find_by_comment("id:c0")) == rich("f1")
        assert await db.records.find_by_comment("id:c") is None
        assert await db.records.find_by_comment("id:nobody") is None

    @pytest.mark.anyio
    async def test_a_record_written_before_per_comment_tracking_is_upgraded(
        self, db: Database
    ) -> None:
        """A record of an earlier release (counts and recent keys) reads with exact counts."""
        legacy = {
            "file_id": "old",
            "comment_count": 3,
            "recent_comment_keys": ["id:k1", "id:k2"],
            "last_comment": {"text": "last", "author": "Ana", "at": T0.isoformat()},
            "created_at": T0.isoformat(),
            "updated_at": T0.isoformat(),
        }
        upgraded = from_plain(legacy, UploadRecord)
        assert (upgraded.comment_count, upgraded.open_comments) == (3, 3)
        assert [e.key for e in upgraded.comments] == ["legacy:0", "id:k1", "id:k2"]
        assert upgraded.last_comment == LastComment("last", "Ana", T0)
        await commit(db, upgraded)
        assert await db.records.find_by_comment("id:k2") == upgraded

    @pytest.mark.anyio
    async def test_find_many_answers_many_files_at_once(self, db: Database) -> None:
        """A thousand committed files are all found in one call."""
        many = [record(f"f{i}", i) for i in range(1_000)]
        await commit(db, *many)
        found = await db.records.find_many([r.file_id for r in many] + ["missing"])
        assert found == {r.file_id: r for r in many}

    @pytest.mark.anyio
    async def test_listing_is_newest_first_paginated_and_filtered(self, db: Database) -> None:
        """Records list most recently changed first, in pages, optionally of one status."""
        await commit(
            db,
            record("a", 1, processing=Processing.READY),
            record("b", 2, processing=Processing.PROCESSING),
        )
        await commit(db, record("c", 3, processing=Processing.READY))
        await commit(db, record("d", 0, review=Review.APPROVED))
        listed = await db.records.list_records()
        assert [r.file_id for r in listed] == ["c", "b", "a", "d"]
        page = await db.records.list_records(offset=1, limit=2)
        assert [r.file_id for r in page] == ["b", "a"]
        assert await db.records.list_records(offset=4) == []
        done = await db.records.list_records(status=PostflowStatus.COMPLETED)
        assert [r.file_id for r in done] == ["c", "a"]
        assert await db.records.count(status=PostflowStatus.COMPLETED) == 2
        assert await db.records.count(status=PostflowStatus.APPROVED) == 1
        assert await db.records.count(status=PostflowStatus.FAILED) == 0
        assert await db.records.count() == 4

    @pytest.mark.anyio
    async def test_records_survive_a_restart(self, db: Database) -> None:
        """Committed records and the tracker mark are still there after a restart."""
        await commit(db, rich(), record("b"))
        await db.records.set_tracker_mark(1)
        await db.restart()
        assert await db.records.find("f1") == rich()
        assert await db.records.count() == 2
        assert await db.records.tracker_mark() == 1

    @pytest.mark.anyio
    async def test_changes_come_in_commit_order_and_the_mark_moves(self, db: Database) -> None:
        """changed_since gives the records changed after a mark, oldest change first."""
        assert await db.records.tracker_mark() == 0
        assert await db.records.changed_since(0, 10) == ([], 0)
        await commit(db, record("a"), record("b"))
        await commit(db, record("c"))
        changed, mark = await db.records.changed_since(0, 10)
        assert [r.file_id for r in changed] == ["a", "b", "c"]
        assert await db.records.changed_since(mark, 10) == ([], mark)
        await commit(db, record("a", 9, processing=Processing.READY))
        again, later = await db.records.changed_since(mark, 10)
        assert again == [record("a", 9, processing=Processing.READY)] and later > mark

    @pytest.mark.anyio
    async def test_a_limit_splitting_a_commit_never_skips_or_repeats(self, db: Database) -> None:
        """Five records of one commit read two at a time come out once each, in order."""
        five = [record(f"r{i}", i) for i in range(5)]
        await commit(db, *five)
        batches = await drain(db, limit=2)
        assert [[r.file_id for r in b] for b in batches] == [["r0", "r1"], ["r2", "r3"], ["r4"]]
        await commit(db, record("r1", 7, processing=Processing.READY), record("r5"))
        assert [[r.file_id for r in b] for b in await drain(db, limit=1)] == [["r1"], ["r5"]]
        assert await drain(db, limit=1) == []

    @pytest.mark.anyio
    async def test_a_file_changed_twice_before_a_read_comes_once_in_its_latest_state(
        self, db: Database
    ) -> None:
        """Reading after two changes of a file gives it once, as last committed, after the others."""
        await commit(db, record("a"), record("b"))
        await commit(db, record("a", 3, processing=Processing.READY))
        changed, _ = await db.records.changed_since(0, 10)
        assert changed == [record("b"), record("a", 3, processing=Processing.READY)]

    @pytest.mark.anyio
    async def test_adopt_adds_only_missing_records(self, db: Database) -> None:
        """adopt takes in files the database lacks and leaves known ones as they are."""
        await commit(db, record("a", processing=Processing.READY))
        mark = (await db.records.changed_since(0, 10))[1]
        await db.records.set_tracker_mark(mark)
        adopted = [record("a", 5, review=Review.REJECTED), record("z", 1)]
        assert await db.records.adopt(adopted) == 1
        assert await db.records.adopt(adopted) == 0
        assert await db.records.find("a") == record("a", processing=Processing.READY)
        assert await db.records.find("z") == record("z", 1)
        assert await db.records.count() == 2
        # What came from the tracker is not written back to it.
        assert await db.records.changed_since(mark, 10) == ([], mark)
        await commit(db, record("z", 2, processing=Processing.READY))
        changed, _ = await db.records.changed_since(mark, 10)
        assert changed == [record("z", 2, processing=Processing.READY)]


class TestMemoryRecords(RecordStoreContract):
    """The in-memory fake keeps the record contract."""

    open_database = staticmethod(memory_database)


class TestSqliteRecords(RecordStoreContract):
    """SqliteRecords, fed by SqliteJournal's commit, keeps the record contract."""

    open_database = staticmethod(sqlite_database)


class TestPostgresRecords(RecordStoreContract):
    """A PostgreSQL database keeps the record store contract."""

    open_database = staticmethod(postgres_database)


# A random interleaving of commits and reads, on a fresh database per example.
operations = st.lists(
    st.one_of(
        st.tuples(
            st.just("commit"),
            st.lists(st.sampled_from("abcde"), min_size=1, max_size=4, unique=True),
        ),
        st.tuples(st.just("read"), st.integers(min_value=1, max_value=4)),
    ),
    max_size=12,
)


@contextlib.contextmanager
def event_loop() -> Iterator[asyncio.AbstractEventLoop]:
    """A private event loop for a hypothesis example."""
    loop = asyncio.new_event_loop()
    try:
        yield loop
    finally:
        loop.close()


async def interleave(db: Database, ops: list[tuple[str, Any]], last_limit: int) -> None:
    """Run ``ops`` and a final drain; check every change is read once, in commit order."""
    read: list[tuple[str, int]] = []
    latest: dict[str, int] = {}

    async def take(limit: int) -> None:
        mark = await db.records.tracker_mark()
        changed, new_mark = await db.records.changed_since(mark, limit)
        assert len(changed) <= limit
        await db.records.set_tracker_mark(new_mark)
        read.extend((r.file_id, r.comment_count) for r in changed)

    for number, (kind, arg) in enumerate(ops, start=1):
        if kind == "commit":
            await commit(db, *(record(fid, number, comment_count=number) for fid in arg))
            latest.update(dict.fromkeys(arg, number))
        else:
            await take(arg)
    for batch in await drain(db, last_limit):
        read.extend((r.file_id, r.comment_count) for r in batch)
    numbers = [n for _, n in read]
    assert numbers == sorted(numbers), "changes are read in commit order"
    assert len(set(read)) == len(read), "no change is read twice"
    last_read = dict(read)
    assert last_read == latest, "every file's last change is read"


@pytest.mark.parametrize(
    "open_database",
    [memory_database, sqlite_database, postgres_database],
    ids=["memory", "sqlite", "postgres"],
)
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=operations, last_limit=st.integers(min_value=1, max_value=3))
def test_the_tracker_mark_never_skips_or_repeats_a_change(
    open_database: Callable[[Path], Database], ops: list[tuple[str, Any]], last_limit: int
) -> None:
    """Whatever commits and limited reads interleave, each change is read once, in order."""
    tmp = Path(tempfile.mkdtemp())
    try:
        with event_loop() as loop:
            db = open_database(tmp)
            try:
                loop.run_until_complete(interleave(db, ops, last_limit))
            finally:
                loop.run_until_complete(db.close())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# --- Tracker ---------------------------------------------------------------------------

TRACKER_FILE = "uploads_tracking.json"


async def close_tracker(tracker: Tracker) -> None:
    """Release a tracker adapter's thread, when it has one."""
    close = getattr(tracker, "close", None)
    if close is not None:
        await close()


def by_file(records: list[UploadRecord]) -> dict[str, UploadRecord]:
    """Records by file id, checking there is one per file."""
    found = {r.file_id: r for r in records}
    assert len(found) == len(records), "one entry per file"
    return found


class TrackerContract:
    """What every tracker must do: write records, give back the linked ones."""

    make_tracker: Callable[[Path], Tracker]

    @pytest.fixture
    async def tracker(self, tmp_path: Path) -> AsyncIterator[Tracker]:
        """A fresh tracker with no entries linked to Frame.io files."""
        made = type(self).make_tracker(tmp_path)
        yield made
        await close_tracker(made)

    @pytest.mark.anyio
    async def test_an_empty_tracker_has_no_entries(self, tracker: Tracker) -> None:
        """Nothing written, nothing read."""
        assert await tracker.entries() == []

    @pytest.mark.anyio
    async def test_written_records_come_back_from_entries(self, tracker: Tracker) -> None:
        """A write then entries() round-trips every field of every record."""
        written = [rich("f1"), record("f2", 1), record("f3", 2)]
        await tracker.write(written)
        assert by_file(await tracker.entries()) == by_file(written)

    @pytest.mark.anyio
    async def test_writing_the_same_records_twice_is_harmless(self, tracker: Tracker) -> None:
        """A repeated write (a retry after a crash) leaves the same entries."""
        written = [rich("f1"), record("f2", 1)]
        await tracker.write(written)
        first = by_file(await tracker.entries())
        await tracker.write(written)
        assert by_file(await tracker.entries()) == first == by_file(written)

    @pytest.mark.anyio
    async def test_a_second_write_updates_the_entry_in_place(self, tracker: Tracker) -> None:
        """A newer state of a file replaces its entry; other entries stay."""
        await tracker.write([record("f1"), record("f2")])
        newer = record("f1", 9, processing=Processing.READY, review=Review.NEEDS_REVIEW)
        await tracker.write([newer])
        assert by_file(await tracker.entries()) == {"f1": newer, "f2": record("f2")}

    @pytest.mark.anyio
    async def test_an_empty_write_changes_nothing(self, tracker: Tracker) -> None:
        """Writing no records is allowed and keeps what is there."""
        await tracker.write([record("f1")])
        await tracker.write([])
        assert await tracker.entries() == [record("f1")]


class TestMemoryTracker(TrackerContract):
    """The in-memory fake keeps the tracker contract."""

    make_tracker = staticmethod(lambda tmp_path: MemoryTracker())


class TestJsonTracker(TrackerContract):
    """PostFlow's JSON tracker file keeps the tracker contract."""

    make_tracker = staticmethod(lambda tmp_path: JsonTracker(tmp_path / TRACKER_FILE))


def postflow_uploads_named(*names: str) -> dict[str, Any]:
    """Uploads PostFlow added before Frame.io knew the files: named, not yet linked."""
    return {f"up-{name}": {"filename": name, "status": "📋 QUEUED"} for name in names}


class TestPostflowTracker(TrackerContract):
    """PostFlow's live UploadTracker keeps the contract for the uploads it added itself."""

    make_tracker = staticmethod(
        lambda tmp_path: PostflowTracker(
            FakeUploadTracker(postflow_uploads_named("f1.mov", "f2.mov", "f3.mov"))
        )
    )


@pytest.mark.anyio
async def test_a_file_postflow_does_not_know_is_left_out_of_its_tracker() -> None:
    """A client's file or a test event is in our database only: PostFlow's list stays its own."""
    fake = FakeUploadTracker(postflow_uploads_named("f1.mov"))
    tracker = PostflowTracker(fake)
    try:
        await tracker.write([record("f1"), record("stranger")])
        assert [r.file_id for r in await tracker.entries()] == ["f1"]
        assert set(fake.tracking_data["uploads"]) == {"up-f1.mov"}
    finally:
        await tracker.close()


# --- PostFlow's entries: the JSON file and the live tracker ------------------------------

# PostFlow's own values, written here from PostFlow's UploadStatus, not from our code.
POSTFLOW_VALUES = {status.name: status.value for status in UploadStatus}


class PostflowEntries:
    """A tracker over PostFlow's entries, seeded with ``uploads``; ``uploads()`` reads them back."""

    def __init__(self, kind: str, tmp_path: Path, uploads: dict[str, Any] | None = None) -> None:
        self.kind = kind
        self.path = tmp_path / TRACKER_FILE
        self.fake = FakeUploadTracker(uploads)
        self.tracker: JsonTracker | PostflowTracker
        if kind == "json":
            if uploads is not None:
                self.path.write_text(
                    json.dumps({**self.fake.tracking_data, "project": "keep me"}),
                    encoding="utf-8",
                )
            self.tracker = JsonTracker(self.path)
        else:
            self.tracker = PostflowTracker(self.fake)

    def uploads(self) -> dict[str, Any]:
        """The entries as PostFlow would read them now."""
        if self.kind == "json":
            uploads: dict[str, Any] = json.loads(self.path.read_text(encoding="utf-8"))["uploads"]
            return uploads
        return self.fake.tracking_data["uploads"]


@pytest.fixture(params=["json", "postflow"])
async def postflow_entries(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[Callable[..., PostflowEntries]]:
    """Make a PostFlow-format tracker (the JSON file, or the live object) with given uploads."""
    made: list[PostflowEntries] = []

    def make(uploads: dict[str, Any] | None = None) -> PostflowEntries:
        entries = PostflowEntries(request.param, tmp_path, uploads)
        made.append(entries)
        return entries

    yield make
    for entries in made:
        await entries.tracker.close()


def shown_as(status: PostflowStatus, file_id: str = "f1", **changes: Any) -> UploadRecord:
    """A record whose displayed status is ``status``."""
    processing, review = axes_for(status)
    return record(file_id, 1, processing=processing, review=review, **changes)


@pytest.mark.anyio
@pytest.mark.parametrize("status", list(PostflowStatus), ids=lambda s: s.name)
async def test_the_stored_status_is_postflows_own_value(
    postflow_entries: Callable[..., PostflowEntries], status: PostflowStatus
) -> None:
    """ "status" holds PostFlow's value, emoji first ("✅ APPROVED", "⚙️ PROCESSING", ...)."""
    made = postflow_entries(postflow_uploads_named("f1.mov"))
    await made.tracker.write([shown_as(status)])
    (entry,) = made.uploads().values()
    assert entry["status"] == POSTFLOW_VALUES[status.name]
    assert entry["status"].split(" ")[-1] == status.name


@pytest.mark.anyio
async def test_statuses_reach_postflow_through_its_own_methods() -> None:
    """PROCESSING via mark_processing, COMPLETED via mark_completed, the rest via update_status."""
    fake = FakeUploadTracker(postflow_uploads_named("f1.mov"))
    tracker = PostflowTracker(fake)
    try:
        steps = [
            PostflowStatus.PROCESSING,
            PostflowStatus.COMPLETED,
            PostflowStatus.WAITING_APPROVAL,
            PostflowStatus.APPROVED,
        ]
        for status in steps:
            await tracker.write([shown_as(status)])
        await tracker.write([shown_as(PostflowStatus.APPROVED)])
        calls = fake.status_calls()
        assert [call[0] for call in calls] == [
            "mark_processing",
            "mark_completed",
            "update_status",
            "update_status",
        ]
        assert calls[1][2]["file_id"] == "f1"
        assert [call[2] for call in calls[2:]] == ["⏳ WAITING_APPROVAL", "✅ APPROVED"]
        assert fake.tracking_data["uploads"]["up-f1.mov"]["status"] == "✅ APPROVED"
        assert "completed_at" in fake.tracking_data["uploads"]["up-f1.mov"]
    finally:
        await tracker.close()


SHOT_10 = {
    "upload_id": "up-1",
    "filename": "shot_010.mov",
    "status": "🔄 UPLOADING",
    "created_at": "2025-12-31T10:00:00",
    "size": 1234,
    "project": "Feature",
}


@pytest.mark.anyio
async def test_an_upload_postflow_created_first_is_linked_not_duplicated(
    postflow_entries: Callable[..., PostflowEntries],
) -> None:
    """An unlinked entry with the file's name becomes the file's entry; no second one appears."""
    made = postflow_entries({"up-1": dict(SHOT_10)})
    assert await made.tracker.entries() == []
    ready = attrs.evolve(record("file-9", 1, processing=Processing.READY), name="shot_010.mov")
    await made.tracker.write([ready])
    uploads = made.uploads()
    assert list(uploads) == ["up-1"]
    entry = uploads["up-1"]
    assert entry["frameio_data"]["file_id"] == "file-9"
    assert entry["status"] == "🎉 COMPLETED"
    assert (entry["upload_id"], entry["filename"]) == ("up-1", "shot_010.mov")
    assert await made.tracker.entries() == [ready]
    approved = attrs.evolve(ready, review=Review.APPROVED)
    await made.tracker.write([approved])
    assert list(made.uploads()) == ["up-1"]
    assert await made.tracker.entries() == [approved]


@pytest.mark.anyio
async def test_the_newest_unlinked_upload_of_a_name_is_the_one_linked(
    postflow_entries: Callable[..., PostflowEntries],
) -> None:
    """Of two unlinked uploads of one name, the most recent is linked; the older stays as it was."""
    older = {**SHOT_10, "upload_id": "up-1"}
    newer = {**SHOT_10, "upload_id": "up-2", "size": 99}
    made = postflow_entries({"up-1": older, "up-2": newer})
    await made.tracker.write([attrs.evolve(record("file-9"), name="shot_010.mov")])
    uploads = made.uploads()
    assert uploads["up-2"]["frameio_data"]["file_id"] == "file-9"
    assert uploads["up-1"] == older


@pytest.mark.anyio
async def test_a_name_never_takes_an_entry_linked_to_another_file(
    postflow_entries: Callable[..., PostflowEntries],
) -> None:
    """Two Frame.io files sharing a name never share an entry."""
    linked = {**SHOT_10, "frameio_data": {"file_id": "file-1"}}
    made = postflow_entries({"up-1": linked})
    await made.tracker.write([attrs.evolve(record("file-2"), name="shot_010.mov")])
    uploads = made.uploads()
    assert uploads["up-1"] == linked
    if made.kind == "json":  # the receiver's own file gets an entry of its own
        assert set(uploads) == {"up-1", "file-2"}
        assert uploads["file-2"]["frameio_data"]["file_id"] == "file-2"
        assert (uploads["file-2"]["upload_id"], uploads["file-2"]["filename"]) == (
            "file-2",
            "shot_010.mov",
        )
        assert {r.file_id for r in await made.tracker.entries()} == {"file-1", "file-2"}
    else:  # not one of PostFlow's uploads: left out of its tracker
        assert set(uploads) == {"up-1"}
        assert {r.file_id for r in await made.tracker.entries()} == {"file-1"}


@pytest.mark.anyio
async def test_keys_we_do_not_own_are_kept(
    postflow_entries: Callable[..., PostflowEntries],
) -> None:
    """PostFlow's own fields, in the entry and in frameio_data, and other entries stay as they are."""
    mine = {
        **SHOT_10,
        "notes": {"colourist": "Ana"},
        "frameio_data": {"file_id": "file-9", "project_id": "p-1", "asset_path": "/a/b"},
    }
    other = {"upload_id": "up-7", "filename": "other.mov", "status": "❌ FAILED", "size": 7}
    made = postflow_entries({"up-1": mine, "up-7": other})
    await made.tracker.write([record("file-9", 1, processing=Processing.READY)])
    uploads = made.uploads()
    entry = uploads["up-1"]
    for key in ("size", "project", "notes", "created_at", "filename"):
        assert entry[key] == mine[key]
    assert entry["frameio_data"]["project_id"] == "p-1"
    assert entry["frameio_data"]["asset_path"] == "/a/b"
    assert uploads["up-7"] == other


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("old_value", "status"),
    [
        ("APPROVED ✅", PostflowStatus.APPROVED),
        ("WAITING_APPROVAL ⏳", PostflowStatus.WAITING_APPROVAL),
        ("COMPLETED 🎉", PostflowStatus.COMPLETED),
    ],
)
async def test_an_entry_written_in_the_old_order_is_read_and_rewritten_emoji_first(
    postflow_entries: Callable[..., PostflowEntries], old_value: str, status: PostflowStatus
) -> None:
    """ "APPROVED ✅" (release 0.1.0's order) reads as APPROVED; its next change writes "✅ APPROVED"."""
    made = postflow_entries(
        {"up-1": {"filename": "old.mov", "status": old_value, "frameio_data": {"file_id": "f-old"}}}
    )
    (found,) = await made.tracker.entries()
    assert (found.file_id, found.name, found.status) == ("f-old", "old.mov", status)
    await made.tracker.write([attrs.evolve(found, comment_count=1, updated_at=T0)])
    entry = made.uploads()["up-1"]
    assert entry["status"] == POSTFLOW_VALUES[status.name]
    (again,) = await made.tracker.entries()
    assert again.status is status and again.comment_count == 1


@pytest.mark.anyio
async def test_unlinked_uploads_are_not_entries(
    postflow_entries: Callable[..., PostflowEntries],
) -> None:
    """Uploads PostFlow has not linked to a Frame.io file are not records of ours."""
    made = postflow_entries(
        {
            "up-1": dict(SHOT_10),
            "up-2": {"filename": "x.mov", "status": "✅ APPROVED", "frameio_data": {}},
            "up-3": "not an entry",
        }
    )
    assert await made.tracker.entries() == []


@pytest.mark.anyio
async def test_a_link_postflow_made_with_a_dotted_key_is_followed() -> None:
    """When PostFlow links an upload itself ("frameio_data.file_id"), that entry is the file's."""
    fake = FakeUploadTracker({"up-1": {**SHOT_10, "filename": "renamed.mov"}})
    fake.update_upload("up-1", {"frameio_data.file_id": "file-9"})
    assert fake.tracking_data["uploads"]["up-1"]["frameio_data"] == {"file_id": "file-9"}
    tracker = PostflowTracker(fake)
    try:
        await tracker.write([record("file-9", 1, processing=Processing.PROCESSING)])
        assert list(fake.tracking_data["uploads"]) == ["up-1"]
        assert fake.tracking_data["uploads"]["up-1"]["status"] == "⚙️ PROCESSING"
        assert fake.tracking_data["uploads"]["up-1"]["filename"] == "renamed.mov"
    finally:
        await tracker.close()


@pytest.mark.anyio
async def test_a_failing_postflow_tracker_is_a_storage_error_and_a_retry_completes() -> None:
    """PostFlow's own error becomes a StorageError; the same write again brings the entry up."""
    fake = FakeUploadTracker(postflow_uploads_named("f1.mov"))
    tracker = PostflowTracker(fake)
    try:
        fake.fail_next = 1
        ready = record("f1", 1, processing=Processing.READY)
        with pytest.raises(StorageError, match="No space left"):
            await tracker.write([ready])
        await tracker.write([ready])
        assert await tracker.entries() == [ready]
        assert fake.tracking_data["uploads"]["up-f1.mov"]["status"] == "🎉 COMPLETED"
    finally:
        await tracker.close()


@pytest.mark.anyio
async def test_a_tracker_without_an_uploads_dictionary_is_a_storage_error() -> None:
    """A PostFlow object whose tracking_data holds no uploads dictionary is reported."""
    fake = FakeUploadTracker()
    fake.tracking_data["uploads"] = []
    tracker = PostflowTracker(fake)
    try:
        with pytest.raises(StorageError, match="uploads"):
            await tracker.entries()
        with pytest.raises(StorageError, match="uploads"):
            await tracker.write([record("f1")])
    finally:
        await tracker.close()


# --- the JSON file ---------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize(
    "content",
    [
        b'{"uploads": {"up-1": ',
        b'{"uploads": []}',
        b"[1, 2]",
        b"\xff\xfe not text",
    ],
    ids=["truncated", "uploads-not-an-object", "not-an-object", "not-utf8"],
)
async def test_an_unreadable_json_file_is_left_untouched(tmp_path: Path, content: bytes) -> None:
    """A tracker file that cannot be read raises StorageError naming it, and keeps its bytes."""
    path = tmp_path / TRACKER_FILE
    path.write_bytes(content)
    tracker = JsonTracker(path)
    try:
        with pytest.raises(StorageError, match=r"uploads_tracking\.json"):
            await tracker.write([record("f1")])
        with pytest.raises(StorageError, match=r"uploads_tracking\.json"):
            await tracker.entries()
        assert path.read_bytes() == content
        assert [p.name for p in tmp_path.iterdir()] == [TRACKER_FILE]
    finally:
        await tracker.close()


@pytest.mark.anyio
async def test_the_json_file_is_written_whole_leaving_no_temporary_file(tmp_path: Path) -> None:
    """A missing file is created; after a write only the tracker file is there, and it parses."""
    path = tmp_path / TRACKER_FILE
    tracker = JsonTracker(path)
    try:
        assert await tracker.entries() == []
        await tracker.write([record(f"f{i}", i) for i in range(5)])
        assert [p.name for p in tmp_path.iterdir()] == [TRACKER_FILE]
        document = json.loads(path.read_text(encoding="utf-8"))
        assert {"version", "created_at", "last_updated"} <= set(document)
        assert len(document["uploads"]) == 5
    finally:
        await tracker.close()


@pytest.mark.anyio
async def test_the_json_files_own_top_level_keys_are_kept(tmp_path: Path) -> None:
    """Keys PostFlow keeps at the top of its file survive our writes."""
    made = PostflowEntries("json", tmp_path, {"up-1": dict(SHOT_10)})
    try:
        await made.tracker.write([record("f1")])
        document = json.loads(made.path.read_text(encoding="utf-8"))
        assert document["project"] == "keep me"
        assert document["version"] == "1.0"
    finally:
        await made.tracker.close()
