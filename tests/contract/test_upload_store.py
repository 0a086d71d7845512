"""One contract every upload store passes: memory, SQLite and PostFlow's JSON file."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest

from postflow_webhooks.adapters.jsonfile import JsonUploadStore
from postflow_webhooks.adapters.memory import MemoryUploadStore
from postflow_webhooks.adapters.postflow_tracker import PostflowTrackerStore
from postflow_webhooks.adapters.sqlite import SqliteUploadStore
from postflow_webhooks.domain.ports import UploadStore
from postflow_webhooks.domain.records import HistoryEntry, LastComment, UploadRecord
from postflow_webhooks.domain.statuses import PostflowStatus, Processing, Review

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def record(file_id: str, minutes: int = 0, **changes: object) -> UploadRecord:
    """A record changed ``minutes`` after T0."""
    at = T0 + timedelta(minutes=minutes)
    return attrs.evolve(UploadRecord.new(file_id, at, name=f"{file_id}.mov"), **changes)


class UploadStoreContract:
    """The behaviour every ``UploadStore`` must have."""

    def make_store(self, tmp_path: Path) -> UploadStore:
        """A new, empty store."""
        raise NotImplementedError

    @pytest.fixture
    async def store(self, tmp_path: Path) -> UploadStore:
        """A fresh store, closed after the test."""
        made = self.make_store(tmp_path)
        yield made
        await made.close()

    @pytest.mark.anyio
    async def test_a_saved_record_is_found_by_file_id_unchanged(self, store: UploadStore) -> None:
        """A saved record comes back equal, history and comments included."""
        rich = record(
            "f1",
            processing=Processing.READY,
            review=Review.APPROVED,
            version=3,
            links=(("view_url", "https://f.io/x"),),
            comment_count=2,
            last_comment=LastComment("nice", "Ana", T0),
            history=(HistoryEntry(T0, "file.ready", "d1", None, PostflowStatus.COMPLETED, 3),),
        )
        await store.save([rich])
        found = await store.find("f1")
        assert found is not None
        assert attrs.evolve(found, upload_id=None) == attrs.evolve(rich, upload_id=None)

    @pytest.mark.anyio
    async def test_an_unknown_file_is_not_found(self, store: UploadStore) -> None:
        """``find`` answers None for a file never saved."""
        assert await store.find("nope") is None

    @pytest.mark.anyio
    async def test_saving_again_replaces_the_record(self, store: UploadStore) -> None:
        """A second save of the same file replaces the first."""
        await store.save([record("f1")])
        await store.save([record("f1", 5, processing=Processing.PROCESSING)])
        found = await store.find("f1")
        assert found is not None and found.processing is Processing.PROCESSING
        assert await store.count() == 1

    @pytest.mark.anyio
    async def test_a_name_never_finds_a_record_linked_to_another_file(
        self, store: UploadStore
    ) -> None:
        """Two Frame.io files that share a name stay two records."""
        await store.save([record("f1")])
        assert await store.find("other-id", "f1.mov") is None

    @pytest.mark.anyio
    async def test_listing_is_newest_first_paginated_and_filtered(self, store: UploadStore) -> None:
        """Records list most recent first, in pages, optionally of one status."""
        await store.save(
            [
                record("a", 1, processing=Processing.READY),
                record("b", 2, processing=Processing.PROCESSING),
                record("c", 3, processing=Processing.READY),
            ]
        )
        listed = await store.list_records()
        assert [r.file_id for r in listed] == ["c", "b", "a"]
        page = await store.list_records(offset=1, limit=1)
        assert [r.file_id for r in page] == ["b"]
        done = await store.list_records(status=PostflowStatus.COMPLETED)
        assert [r.file_id for r in done] == ["c", "a"]
        assert await store.count(status=PostflowStatus.COMPLETED) == 2
        assert await store.count() == 3

    @pytest.mark.anyio
    async def test_find_many_returns_the_known_records_by_file_id(self, store: UploadStore) -> None:
        """``find_many`` answers every known file id and leaves unknown ones out."""
        await store.save([record("a"), record("b", 1)])
        found = await store.find_many([("a", None), ("b", "b.mov"), ("zzz", "zzz.mov")])
        assert sorted(found) == ["a", "b"]
        assert found["b"].name == "b.mov"

    @pytest.mark.anyio
    async def test_a_batch_is_saved_together(self, store: UploadStore) -> None:
        """Several records saved in one call are all there."""
        await store.save([record(f"f{i}", i) for i in range(20)])
        assert await store.count() == 20


class TestMemoryUploadStore(UploadStoreContract):
    """The in-memory fake keeps the contract."""

    def make_store(self, tmp_path: Path) -> UploadStore:
        """A memory store."""
        return MemoryUploadStore()


class TestSqliteUploadStore(UploadStoreContract):
    """The SQLite store keeps the contract."""

    def make_store(self, tmp_path: Path) -> UploadStore:
        """A store in a fresh database file."""
        return SqliteUploadStore(tmp_path / "db.sqlite3")


class TestJsonUploadStore(UploadStoreContract):
    """PostFlow's JSON tracker file keeps the contract."""

    def make_store(self, tmp_path: Path) -> UploadStore:
        """A store in a fresh tracker file."""
        return JsonUploadStore(tmp_path / "uploads_tracking.json")


POSTFLOW_TRACKER = """{
  "version": "1.0",
  "created_at": "2026-01-01T10:00:00",
  "last_updated": "2026-01-01T10:00:00",
  "uploads": {
    "up-1": {"filename": "shot_010.mov", "status": "UPLOADING 🔄", "size": 1234,
             "project": "Feature"}
  }
}"""


@pytest.mark.anyio
async def test_json_store_finds_postflow_upload_by_filename_and_links_it(tmp_path: Path) -> None:
    """An upload PostFlow created is found by filename, then linked and updated in place."""
    path = tmp_path / "uploads_tracking.json"
    path.write_text(POSTFLOW_TRACKER, encoding="utf-8")
    store = JsonUploadStore(path)
    found = await store.find("file-9", "shot_010.mov")
    assert found is not None
    assert found.upload_id == "up-1" and found.status is PostflowStatus.UPLOADING
    await store.save([attrs.evolve(found, processing=Processing.READY, updated_at=T0)])
    import json

    document = json.loads(path.read_text(encoding="utf-8"))
    entry = document["uploads"]["up-1"]
    assert list(document["uploads"]) == ["up-1"]
    assert entry["status"] == "COMPLETED 🎉"
    assert entry["frameio_data"]["file_id"] == "file-9"
    assert entry["size"] == 1234 and entry["project"] == "Feature"
    assert {"version", "created_at", "last_updated"} <= set(document)
    relinked = await store.find("file-9")
    assert relinked is not None and relinked.upload_id == "up-1"
    await store.close()


@pytest.mark.anyio
async def test_json_store_gives_an_untracked_file_its_own_entry(tmp_path: Path) -> None:
    """A file PostFlow never tracked gets an entry keyed by its file id."""
    path = tmp_path / "uploads_tracking.json"
    path.write_text(POSTFLOW_TRACKER, encoding="utf-8")
    store = JsonUploadStore(path)
    await store.save([record("file-2", processing=Processing.UPLOADING)])
    import json

    uploads = json.loads(path.read_text(encoding="utf-8"))["uploads"]
    assert set(uploads) == {"up-1", "file-2"}
    assert uploads["file-2"]["filename"] == "file-2.mov"
    await store.close()


@pytest.mark.anyio
async def test_json_store_reports_a_corrupt_file_and_never_replaces_it(tmp_path: Path) -> None:
    """A corrupt tracker raises a StorageError naming the file, and stays byte for byte."""
    from postflow_webhooks.domain.errors import StorageError

    path = tmp_path / "uploads_tracking.json"
    path.write_text('{"uploads": {"up-1": ', encoding="utf-8")
    store = JsonUploadStore(path)
    with pytest.raises(StorageError, match=r"uploads_tracking\.json"):
        await store.save([record("f1")])
    with pytest.raises(StorageError, match="left untouched"):
        await store.find("f1")
    assert path.read_text(encoding="utf-8") == '{"uploads": {"up-1": '
    await store.close()


@pytest.mark.anyio
async def test_json_store_writes_atomically_leaving_no_temporary_file(tmp_path: Path) -> None:
    """After a save only the tracker file is in the directory, and it parses."""
    import json

    path = tmp_path / "uploads_tracking.json"
    store = JsonUploadStore(path)
    await store.save([record(f"f{i}", i) for i in range(5)])
    assert [p.name for p in tmp_path.iterdir()] == ["uploads_tracking.json"]
    assert len(json.loads(path.read_text(encoding="utf-8"))["uploads"]) == 5
    await store.close()


class DictTracker:
    """A minimal PostFlow-shaped tracker: entries in ``tracking_data['uploads']``."""

    def __init__(self) -> None:
        self.tracking_data: dict[str, Any] = {"uploads": {}}

    def get_upload(self, upload_id: str) -> dict[str, Any] | None:
        """One entry."""
        return self.tracking_data["uploads"].get(upload_id)

    def update_upload(self, upload_id: str, updates: dict[str, Any]) -> None:
        """Merge fields."""
        self.tracking_data["uploads"].setdefault(upload_id, {}).update(updates)

    def mark_processing(self, upload_id: str) -> None:
        """PostFlow's PROCESSING."""
        self.update_status(upload_id, "PROCESSING ⚙️")

    def mark_completed(self, upload_id: str, frameio_data: dict[str, Any] | None = None) -> None:
        """PostFlow's COMPLETED."""
        self.update_status(upload_id, "COMPLETED 🎉")

    def update_status(self, upload_id: str, status: str) -> None:
        """Any label."""
        self.tracking_data["uploads"][upload_id]["status"] = status


class TestPostflowTrackerStore(UploadStoreContract):
    """PostFlow's live tracker object, through its adapter, keeps the contract."""

    def make_store(self, tmp_path: Path) -> UploadStore:
        """A store over a fresh tracker."""
        return PostflowTrackerStore(DictTracker())
