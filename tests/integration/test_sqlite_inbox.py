"""The inbox file: a lock held elsewhere delays commits, never the loop; old numbering kept."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import pytest

from postflow_webhooks.adapters.sqlite import SqliteJournal, group_commit
from postflow_webhooks.adapters.sqlite.connection import open_database
from postflow_webhooks.adapters.sqlite.inbox import inbox_path
from postflow_webhooks.domain.errors import StorageError
from tests.contract.test_journal import delivery


def hold_write_lock(path: Path) -> sqlite3.Connection:
    """A second connection (a CLI command, say) holding the inbox's write lock."""
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    return other


@pytest.mark.anyio
async def test_a_commit_waits_for_the_lock_while_the_loop_keeps_serving(tmp_path: Path) -> None:
    """The append completes once the lock is released; meanwhile the loop is not blocked."""
    journal = SqliteJournal(tmp_path / "journal.sqlite3")
    journal.open()
    other = hold_write_lock(inbox_path(journal.path))
    append = asyncio.create_task(journal.append(delivery("locked-1")))
    started = time.monotonic()
    for _ in range(20):
        await asyncio.sleep(0.01)
    assert time.monotonic() - started < 1.0, "the loop was blocked while the lock was held"
    assert not append.done()
    other.execute("COMMIT")
    other.close()
    await asyncio.wait_for(append, 5)
    pending = await journal.pending(10, delivery("x").received_at)
    await journal.close()
    assert [p.file_id for p in pending] == ["locked-1"]


@pytest.mark.anyio
async def test_a_lock_held_too_long_fails_the_write_with_a_storage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the patience, the waiting writes fail with a reason (the receiver answers 503)."""
    monkeypatch.setattr(group_commit, "LOCK_PATIENCE_SECONDS", 0.2)
    journal = SqliteJournal(tmp_path / "journal.sqlite3")
    journal.open()
    other = hold_write_lock(inbox_path(journal.path))
    with pytest.raises(StorageError, match="write lock"):
        await asyncio.wait_for(journal.append(delivery("late-1")), 5)
    other.execute("ROLLBACK")
    other.close()
    await journal.append(delivery("after-1"))
    pending = await journal.pending(10, delivery("x").received_at)
    await journal.close()
    assert [p.file_id for p in pending] == ["after-1"]


@pytest.mark.anyio
async def test_a_database_from_before_the_inbox_keeps_its_numbering(tmp_path: Path) -> None:
    """Deliveries stored before the inbox existed stay pending; new ones number after them."""
    path = tmp_path / "postflow.sqlite3"
    old = open_database(path)
    for index in range(3):
        old.execute(
            "INSERT INTO deliveries (delivery_id, received_at, event_type, file_id, body, state)"
            " VALUES (?, 0, 'file.ready', ?, X'7B7D', ?)",
            (f"old-{index}", f"old-{index}", "processed" if index < 2 else "pending"),
        )
    old.execute("INSERT INTO counters (kind, key, value) VALUES ('total', '', 3)")
    old.close()
    journal = SqliteJournal(path)
    journal.open()
    await journal.append(delivery("new-1"))
    pending = await journal.pending(10, delivery("x").received_at)
    stats = await journal.stats()
    await journal.close()
    assert [(p.seq, p.file_id) for p in pending] == [(3, "old-2"), (4, "new-1")]
    assert stats.total_events == 4 and stats.backlog == 2
