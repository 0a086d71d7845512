"""One contract for the database's delivery and notification roles: the memory fake and SQLite."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import attrs
import pytest

from postflow_webhooks.domain.errors import StorageError
from postflow_webhooks.domain.journal import (
    MAX_WORD_LENGTH,
    BatchResult,
    Deferral,
    DestinationState,
    IncomingDelivery,
    LastEvent,
    Quarantine,
    WordKind,
    WordSeen,
)
from postflow_webhooks.domain.records import (
    Mention,
    MentionKind,
    Notification,
    NotificationKind,
    UploadRecord,
)
from postflow_webhooks.domain.statuses import PostflowStatus, Processing
from tests.contract.databases import (
    Database,
    SqliteRoles,
    memory_database,
    postgres_database,
    sqlite_database,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def delivery(
    file_id: str | None, event_type: str = "file.ready", at: datetime = T0
) -> IncomingDelivery:
    """A delivery about ``file_id``."""
    return IncomingDelivery(
        delivery_id=uuid.uuid4().hex,
        received_at=at,
        body=b'{"type": "%s", "resource": {"id": "%s"}}'
        % (event_type.encode(), str(file_id).encode()),
        event_type=event_type,
        file_id=file_id,
        signed=True,
    )


def note(file_id: str, status: PostflowStatus, n: int = 0) -> Notification:
    """A status notification for ``file_id``."""
    return Notification(
        kind=NotificationKind.STATUS,
        file_id=file_id,
        at=T0 + timedelta(seconds=n),
        event_type="file.ready",
        delivery_id=f"d-{n}",
        version=1,
        name=f"{file_id}.mov",
        old_status=PostflowStatus.PROCESSING,
        new_status=status,
        link="https://f.io/v",
    )


class DatabaseContract:
    """What every database must do for deliveries, counters and notifications."""

    open_database: Callable[[Path], Database]

    @pytest.fixture
    async def db(self, tmp_path: Path) -> AsyncIterator[Database]:
        """A fresh database, closed after the test."""
        opened = type(self).open_database(tmp_path)
        yield opened
        await opened.close()

    # -- DeliveryInbox and DeliveryQueue ------------------------------------------------

    @pytest.mark.anyio
    async def test_appended_deliveries_are_pending_in_order(self, db: Database) -> None:
        """Deliveries come back in arrival order, with their bytes, type, file and times."""
        sent = [delivery(f"f{i}", at=T0 + timedelta(seconds=i)) for i in range(5)]
        for item in sent:
            await db.journal.append(item)
        pending = await db.journal.pending(10, T0)
        assert [p.delivery_id for p in pending] == [d.delivery_id for d in sent]
        assert [(p.body, p.event_type, p.file_id, p.received_at) for p in pending] == [
            (d.body, d.event_type, d.file_id, d.received_at) for d in sent
        ]
        assert [p.seq for p in pending] == sorted({p.seq for p in pending})
        assert all(p.attempts == 0 and p.not_before is None for p in pending)
        assert [p.delivery_id for p in await db.journal.pending(2, T0)] == [
            d.delivery_id for d in sent[:2]
        ]

    @pytest.mark.anyio
    async def test_a_delivery_without_a_file_is_queued_too(self, db: Database) -> None:
        """Events about no file (folder.created) are queued like the others."""
        await db.journal.append(delivery(None, "folder.created"))
        (pending,) = await db.journal.pending(10, T0)
        assert (pending.file_id, pending.event_type) == (None, "folder.created")

    @pytest.mark.anyio
    async def test_processed_deliveries_leave_the_queue_and_count(self, db: Database) -> None:
        """A committed pass removes processed deliveries; the counters keep them."""
        for item in [delivery("a"), delivery("b", "file.created"), delivery("c")]:
            await db.journal.append(item)
        pending = await db.journal.pending(10, T0)
        last = LastEvent("x", "file.created", "b", "status_changed", T0)
        await db.journal.commit(
            BatchResult(at=T0, processed=tuple(p.seq for p in pending[:2]), last_event=last)
        )
        assert [p.file_id for p in await db.journal.pending(10, T0)] == ["c"]
        stats = await db.journal.stats()
        assert stats.total_events == 3 and stats.backlog == 1
        assert stats.events_by_type == {"file.ready": 2, "file.created": 1}
        assert stats.last_event == last

    @pytest.mark.anyio
    async def test_a_deferred_delivery_holds_back_later_ones_of_its_file(
        self, db: Database
    ) -> None:
        """While a delivery waits, later deliveries of the same file wait too; others go on."""
        for item in [delivery("a"), delivery("a"), delivery("b"), delivery(None, "x.y")]:
            await db.journal.append(item)
        first = (await db.journal.pending(10, T0))[0]
        later = T0 + timedelta(minutes=1)
        await db.journal.commit(BatchResult(at=T0, deferred=(Deferral(first.seq, later, "api"),)))
        assert [p.file_id for p in await db.journal.pending(10, T0)] == ["b", None]
        assert [p.file_id for p in await db.journal.pending(10, later - timedelta(seconds=1))] == [
            "b",
            None,
        ]
        after = await db.journal.pending(10, later)
        assert [p.file_id for p in after] == ["a", "a", "b", None]
        assert after[0].attempts == 1 and after[0].last_error == "api"
        assert after[0].not_before == later
        (waiting,) = await db.journal.deferred()
        assert (waiting.seq, waiting.attempts, waiting.last_error) == (first.seq, 1, "api")

    @pytest.mark.anyio
    async def test_waiting_counts_a_files_deliveries_not_yet_applied(self, db: Database) -> None:
        """waiting(file) counts its pending and deferred deliveries, not processed or quarantined."""
        for item in [delivery("a"), delivery("a"), delivery("a"), delivery("a"), delivery("b")]:
            await db.journal.append(item)
        assert await db.journal.waiting("a") == 4 and await db.journal.waiting("zz") == 0
        one, two, three, _, _ = await db.journal.pending(10, T0)
        await db.journal.commit(
            BatchResult(
                at=T0,
                processed=(one.seq,),
                deferred=(Deferral(two.seq, T0 + timedelta(hours=1), "api"),),
                quarantined=(Quarantine(three.seq, "broken"),),
            )
        )
        assert await db.journal.waiting("a") == 2
        assert await db.journal.waiting("b") == 1

    @pytest.mark.anyio
    async def test_a_second_deferral_counts_another_attempt(self, db: Database) -> None:
        """Each deferral adds an attempt and moves the due time."""
        await db.journal.append(delivery("a"))
        (first,) = await db.journal.pending(10, T0)
        for n in (1, 2):
            due = T0 + timedelta(minutes=n)
            await db.journal.commit(
                BatchResult(at=T0, deferred=(Deferral(first.seq, due, f"try {n}"),))
            )
        (waiting,) = await db.journal.deferred()
        assert (waiting.attempts, waiting.last_error) == (2, "try 2")
        assert waiting.not_before == T0 + timedelta(minutes=2)

    @pytest.mark.anyio
    async def test_next_due_is_the_earliest_deferral(self, db: Database) -> None:
        """next_due is None with nothing waiting, else the earliest due time; processed ones drop."""
        assert await db.journal.next_due() is None
        for item in [delivery("a"), delivery("b"), delivery("c")]:
            await db.journal.append(item)
        assert await db.journal.next_due() is None
        a, b, _ = await db.journal.pending(10, T0)
        soon, later = T0 + timedelta(seconds=5), T0 + timedelta(seconds=50)
        await db.journal.commit(
            BatchResult(
                at=T0, deferred=(Deferral(a.seq, later, "api"), Deferral(b.seq, soon, "api"))
            )
        )
        assert await db.journal.next_due() == soon
        await db.journal.commit(BatchResult(at=soon, processed=(b.seq,)))
        assert await db.journal.next_due() == later

    @pytest.mark.anyio
    async def test_quarantine_sets_aside_and_requeue_brings_back(self, db: Database) -> None:
        """A quarantined delivery is listed with its reason and bytes and can be replayed."""
        await db.journal.append(delivery("a"))
        await db.journal.append(delivery("a"))
        first, second = await db.journal.pending(10, T0)
        await db.journal.commit(
            BatchResult(
                at=T0,
                deferred=(Deferral(first.seq, T0 + timedelta(hours=1), "api"),),
            )
        )
        await db.journal.commit(BatchResult(at=T0, quarantined=(Quarantine(first.seq, "broken"),)))
        assert [p.seq for p in await db.journal.pending(10, T0)] == [second.seq]
        listed = await db.journal.quarantined()
        assert [(q.seq, q.reason, q.delivery_id, q.body) for q in listed] == [
            (first.seq, "broken", first.delivery_id, first.body)
        ]
        assert await db.journal.deferred() == []
        assert (await db.journal.stats()).quarantined == 1
        assert await db.journal.requeue([first.seq, second.seq, 999]) == 1
        assert await db.journal.quarantined() == []
        again = await db.journal.pending(10, T0)
        assert [p.seq for p in again] == [first.seq, second.seq]
        assert (again[0].attempts, again[0].not_before, again[0].last_error) == (0, None, None)
        assert await db.journal.requeue([first.seq]) == 0

    @pytest.mark.anyio
    async def test_rejections_are_counted_by_reason(self, db: Database) -> None:
        """Refused requests are counted by reason, and are not events."""
        await db.journal.reject("bad_signature")
        await db.journal.reject("bad_signature")
        await db.journal.reject("too_large")
        stats = await db.journal.stats()
        assert stats.rejections == {"bad_signature": 2, "too_large": 1}
        assert (stats.total_events, stats.backlog) == (0, 0)

    @pytest.mark.anyio
    async def test_prune_drops_only_old_settled_work(self, db: Database) -> None:
        """Pruning deletes old processed deliveries and sent notifications, nothing else."""
        for item in [delivery("a"), delivery("b"), delivery("c")]:
            await db.journal.append(item)
        a, _, c = await db.journal.pending(10, T0)
        await db.journal.commit(
            BatchResult(
                at=T0,
                processed=(a.seq,),
                quarantined=(Quarantine(c.seq, "broken"),),
                notifications=(
                    note("a", PostflowStatus.COMPLETED),
                    note("a", PostflowStatus.APPROVED, 1),
                    note("a", PostflowStatus.REJECTED, 2),
                ),
            )
        )
        sent, dead, _ = await db.outbox.due(10)
        assert sent.id is not None and dead.id is not None
        await db.outbox.mark_sent(sent.id, T0)
        await db.outbox.mark_dead(dead.id, "400", T0)
        assert await db.journal.prune(T0 - timedelta(days=1)) == 0
        assert await db.journal.prune(T0 + timedelta(days=1)) == 2
        assert [p.file_id for p in await db.journal.pending(10, T0)] == ["b"]
        assert [q.seq for q in await db.journal.quarantined()] == [c.seq]
        assert len(await db.outbox.due(10)) == 1
        assert len(await db.outbox.dead_letters()) == 1
        assert await db.journal.prune(T0 + timedelta(days=1)) == 0

    @pytest.mark.anyio
    async def test_numbers_are_never_reused_after_a_prune(self, db: Database) -> None:
        """Deliveries and notifications added after a prune get numbers above every earlier one."""
        for item in [delivery("a"), delivery("b"), delivery("c")]:
            await db.journal.append(item)
        a, _, c = await db.journal.pending(10, T0)
        await db.journal.commit(
            BatchResult(
                at=T0,
                processed=(a.seq,),
                notifications=(
                    note("a", PostflowStatus.COMPLETED),
                    note("b", PostflowStatus.APPROVED, 1),
                ),
            )
        )
        sent, kept = await db.outbox.due(10)
        assert sent.id is not None and kept.id is not None
        await db.outbox.mark_sent(sent.id, T0)
        assert await db.journal.prune(T0 + timedelta(days=1)) == 2
        await db.journal.append(delivery("d"))
        await db.journal.commit(
            BatchResult(at=T0, notifications=(note("d", PostflowStatus.REJECTED, 2),))
        )
        pending = await db.journal.pending(10, T0)
        assert [p.file_id for p in pending] == ["b", "c", "d"]
        assert pending[-1].seq > c.seq
        due = await db.outbox.due(10)
        assert [n.file_id for n in due] == ["b", "d"]
        assert due[-1].id is not None and due[-1].id > kept.id
        await db.outbox.mark_sent(due[-1].id, T0)
        assert [n.id for n in await db.outbox.due(10)] == [kept.id]

    # -- one commit ---------------------------------------------------------------------

    @pytest.mark.anyio
    async def test_a_commit_writes_marks_records_notifications_and_last_event(
        self, db: Database
    ) -> None:
        """After one commit its marks, records, notifications and last event are all there."""
        await db.journal.append(delivery("a"))
        await db.journal.append(delivery("b"))
        a, b = await db.journal.pending(10, T0)
        record = attrs.evolve(UploadRecord.new("a", T0, name="a.mov"), processing=Processing.READY)
        last = LastEvent(a.delivery_id, "file.ready", "a", "status_changed", T0)
        await db.journal.commit(
            BatchResult(
                at=T0,
                processed=(a.seq,),
                deferred=(Deferral(b.seq, T0 + timedelta(minutes=1), "api"),),
                records=(record,),
                notifications=(note("a", PostflowStatus.COMPLETED),),
                last_event=last,
            )
        )
        assert await db.journal.pending(10, T0) == []
        assert [d.seq for d in await db.journal.deferred()] == [b.seq]
        assert await db.records.find("a") == record
        (due,) = await db.outbox.due(10)
        assert attrs.evolve(due, id=None) == note("a", PostflowStatus.COMPLETED)
        stats = await db.journal.stats()
        assert stats.last_event == last and stats.notifications_pending == 1

    @pytest.mark.anyio
    async def test_an_empty_commit_keeps_the_last_event(self, db: Database) -> None:
        """A commit without a last event leaves the previous one shown."""
        last = LastEvent("x", "file.ready", "a", "updated", T0)
        await db.journal.commit(BatchResult(at=T0, last_event=last))
        await db.journal.commit(BatchResult(at=T0))
        assert (await db.journal.stats()).last_event == last

    @pytest.mark.anyio
    async def test_words_that_decided_nothing_are_counted_by_kind(self, db: Database) -> None:
        """Unmapped review options and unknown status words are counted, most seen first."""
        option, status = WordKind.REVIEW_OPTION, WordKind.UNKNOWN_STATUS
        await db.journal.commit(
            BatchResult(
                at=T0,
                words=(WordSeen(option, "Legal Hold"), WordSeen(status, "weird")),
            )
        )
        await db.journal.commit(
            BatchResult(
                at=T0,
                words=(
                    WordSeen(status, "odd"),
                    WordSeen(status, "odd"),
                    WordSeen(option, "x" * 500),
                ),
            )
        )
        stats = await db.journal.stats()
        assert stats.unmapped_review_options == {"Legal Hold": 1, "x" * MAX_WORD_LENGTH: 1}
        assert list(stats.unknown_statuses.items()) == [("odd", 2), ("weird", 1)]
        assert stats.rejections == {} and stats.total_events == 0

    # -- Counters survive ---------------------------------------------------------------

    @pytest.mark.anyio
    async def test_counters_backlog_and_last_event_survive_a_restart(self, db: Database) -> None:
        """Totals, types, rejections, backlog, quarantine, outbox and last event outlive a restart."""
        for item in [delivery("a"), delivery("b", "file.created"), delivery("c")]:
            await db.journal.append(item)
        await db.journal.reject("bad_signature")
        a, b, _ = await db.journal.pending(10, T0)
        last = LastEvent(a.delivery_id, "file.ready", "a", "status_changed", T0)
        await db.journal.commit(
            BatchResult(
                at=T0,
                processed=(a.seq,),
                quarantined=(Quarantine(b.seq, "broken"),),
                notifications=(
                    note("a", PostflowStatus.COMPLETED),
                    note("a", PostflowStatus.APPROVED, 1),
                ),
                last_event=last,
                words=(WordSeen(WordKind.UNKNOWN_STATUS, "weird"),),
            )
        )
        first, _ = await db.outbox.due(10)
        assert first.id is not None
        await db.outbox.mark_dead(first.id, "400", T0)
        before = await db.journal.stats()
        await db.restart()
        after = await db.journal.stats()
        assert after == before
        assert (after.total_events, after.backlog, after.quarantined) == (3, 1, 1)
        assert after.events_by_type == {"file.ready": 2, "file.created": 1}
        assert after.rejections == {"bad_signature": 1}
        assert (after.notifications_pending, after.notifications_dead) == (1, 1)
        assert after.last_event == last
        assert after.unknown_statuses == {"weird": 1}
        assert [p.file_id for p in await db.journal.pending(10, T0)] == ["c"]
        await db.journal.append(delivery("d"))
        assert (await db.journal.stats()).total_events == 4

    # -- NotificationOutbox, DeadLetters, DestinationStates -------------------------------

    @pytest.mark.anyio
    async def test_notifications_come_out_in_commit_order_and_settle(self, db: Database) -> None:
        """Due notifications are numbered in commit order; settled ones leave the queue."""
        await db.journal.commit(
            BatchResult(
                at=T0,
                notifications=(
                    note("a", PostflowStatus.PROCESSING),
                    note("a", PostflowStatus.COMPLETED, 1),
                ),
            )
        )
        await db.journal.commit(
            BatchResult(at=T0, notifications=(note("b", PostflowStatus.APPROVED, 2),))
        )
        due = await db.outbox.due(10)
        assert [(n.file_id, n.new_status) for n in due] == [
            ("a", PostflowStatus.PROCESSING),
            ("a", PostflowStatus.COMPLETED),
            ("b", PostflowStatus.APPROVED),
        ]
        ids = [n.id for n in due]
        assert None not in ids and ids == sorted(set(ids))
        assert [n.id for n in await db.outbox.due(2)] == ids[:2]
        assert due[0].id is not None and due[1].id is not None
        await db.outbox.mark_sent(due[0].id, T0)
        await db.outbox.mark_dead(due[1].id, "400 Invalid Form Body", T0)
        assert [n.id for n in await db.outbox.due(10)] == [ids[2]]
        stats = await db.journal.stats()
        assert (stats.notifications_pending, stats.notifications_dead) == (1, 1)

    @pytest.mark.anyio
    async def test_each_destination_reads_its_own_notifications_in_order(
        self, db: Database
    ) -> None:
        """due() by destination, and the default's view of every other one, keep commit order."""
        notes = (
            note("a", PostflowStatus.PROCESSING, 0),
            attrs.evolve(note("b", PostflowStatus.PROCESSING, 1), destination="project:Film"),
            note("a", PostflowStatus.COMPLETED, 2),
            attrs.evolve(note("c", PostflowStatus.APPROVED, 3), destination="project:Gone"),
            attrs.evolve(note("b", PostflowStatus.COMPLETED, 4), destination="project:Film"),
        )
        await db.journal.commit(BatchResult(at=T0, notifications=notes))
        film = await db.outbox.due(10, "project:Film")
        assert [(n.file_id, n.new_status, n.destination) for n in film] == [
            ("b", PostflowStatus.PROCESSING, "project:Film"),
            ("b", PostflowStatus.COMPLETED, "project:Film"),
        ]
        rest = await db.outbox.due(10, exclude=["project:Film"])
        assert [(n.file_id, n.destination) for n in rest] == [
            ("a", "default"),
            ("a", "default"),
            ("c", "project:Gone"),
        ]
        assert [n.file_id for n in await db.outbox.due(10, "default")] == ["a", "a"]
        assert len(await db.outbox.due(10)) == 5
        assert film[0].id is not None
        await db.outbox.mark_sent(film[0].id, T0)
        await db.restart()
        assert [n.id for n in await db.outbox.due(10, "project:Film")] == [film[1].id]

    @pytest.mark.anyio
    async def test_a_notification_keeps_who_where_and_mentions(self, db: Database) -> None:
        """Project, actor, comment action and mentions come back from the outbox unchanged."""
        rich_note = attrs.evolve(
            note("a", PostflowStatus.REJECTED),
            project_id="p-1",
            project_name="Feature Film",
            actor_id="u-1",
            actor_name="Ana Lopez",
            destination="project:Feature Film",
            mentions=(Mention(MentionKind.ROLE, "123"), Mention(MentionKind.USER, "456")),
        )
        await db.journal.commit(BatchResult(at=T0, notifications=(rich_note,)))
        await db.restart()
        (found,) = await db.outbox.due(10)
        assert attrs.evolve(found, id=None) == rich_note

    @pytest.mark.anyio
    async def test_dead_letters_are_kept_with_their_reason_and_can_be_requeued(
        self, db: Database
    ) -> None:
        """A dead notification is listed with its answer and time; requeued it is due again."""
        await db.journal.commit(
            BatchResult(
                at=T0,
                notifications=(
                    note("a", PostflowStatus.PROCESSING),
                    note("a", PostflowStatus.COMPLETED, 1),
                ),
            )
        )
        first, second = await db.outbox.due(10)
        assert first.id is not None and second.id is not None
        refused_at = T0 + timedelta(minutes=3)
        await db.outbox.mark_dead(second.id, "400 Invalid Form Body", refused_at)
        (dead,) = await db.outbox.dead_letters()
        assert dead.notification == second
        assert (dead.reason, dead.at) == ("400 Invalid Form Body", refused_at)
        assert await db.outbox.requeue_dead([second.id, first.id, 999]) == 1
        assert await db.outbox.dead_letters() == []
        assert [n.id for n in await db.outbox.due(10)] == [first.id, second.id]

    @pytest.mark.anyio
    async def test_destination_state_is_saved(self, db: Database) -> None:
        """A destination works until marked broken, remembers why, and survives a restart."""
        assert await db.outbox.destination("k") == DestinationState(key="k")
        await db.outbox.set_destination(DestinationState("k", True, "404 Unknown Webhook", T0))
        await db.outbox.set_destination(DestinationState("other"))
        await db.restart()
        saved = await db.outbox.destination("k")
        assert saved == DestinationState("k", True, "404 Unknown Webhook", T0)
        await db.outbox.set_destination(DestinationState("k"))
        assert await db.outbox.destination("k") == DestinationState("k")


class TestMemoryDatabase(DatabaseContract):
    """The in-memory fake keeps the contract."""

    open_database = staticmethod(memory_database)


class TestSqliteDatabase(DatabaseContract):
    """The SQLite database file keeps the contract."""

    open_database = staticmethod(sqlite_database)


class TestPostgresDatabase(DatabaseContract):
    """A PostgreSQL database keeps the contract."""

    open_database = staticmethod(postgres_database)


@pytest.mark.anyio
async def test_a_failed_sqlite_commit_writes_nothing(tmp_path: Path) -> None:
    """A pass whose commit fails part way leaves no mark, record or notification behind."""
    db = SqliteRoles(tmp_path / "postflow.sqlite3")
    try:
        await db.journal.append(delivery("a"))
        await db.journal.append(delivery("b"))
        a, b = await db.journal.pending(10, T0)
        unstorable = Quarantine(b.seq, object())  # type: ignore[arg-type]
        with pytest.raises(StorageError):
            await db.journal.commit(
                BatchResult(
                    at=T0,
                    processed=(a.seq,),
                    quarantined=(unstorable,),
                    records=(UploadRecord.new("a", T0),),
                    notifications=(note("a", PostflowStatus.COMPLETED),),
                )
            )
        assert [p.seq for p in await db.journal.pending(10, T0)] == [a.seq, b.seq]
        assert await db.records.find("a") is None
        assert await db.outbox.due(10) == []
    finally:
        await db.close()
