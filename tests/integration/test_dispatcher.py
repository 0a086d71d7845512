"""``NotificationDispatcher`` end to end: worker -> outbox -> dispatcher -> Discord (fake)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

import pytest

from postflow_webhooks.adapters.discord import DiscordConfig, DiscordNotifier, destination_key
from postflow_webhooks.adapters.memory import MemoryDatabase
from postflow_webhooks.adapters.payload import read_body
from postflow_webhooks.adapters.sqlite import (
    SqliteDatabase,
    SqliteJournal,
    SqliteOutbox,
    SqliteRecords,
)
from postflow_webhooks.app.policies import Policies, exponential
from postflow_webhooks.domain.announce import AnnouncePolicy, Route
from postflow_webhooks.domain.journal import IncomingDelivery
from postflow_webhooks.domain.ports import (
    Backoff,
    DeliveryInbox,
    DeliveryQueue,
    RecordStore,
    Sleep,
)
from postflow_webhooks.domain.statuses import PostflowStatus
from postflow_webhooks.service.dispatcher import (
    NotificationDispatcher,
    PassOutcome,
    replay_dead_letters,
)
from postflow_webhooks.service.routing import Dispatchers
from postflow_webhooks.service.worker import DeliveryWorker
from tests.fakes.fake_discord import FakeDiscord, SimulatedTime

pytestmark = pytest.mark.anyio

S = PostflowStatus

# (delivery id, payload) in the order Frame.io sends them (PostFlow dialect).
SCRIPT: list[tuple[str, dict[str, Any]]] = [
    ("d01", {"event_type": "file.created", "resource": {"id": "f1", "name": "shot_010.mov"}}),
    ("d02", {"event_type": "file.created", "resource": {"id": "f2", "name": "shot_020.mov"}}),
    ("d03", {"event_type": "file.upload.completed", "resource": {"id": "f1"}}),
    ("d04", {"event_type": "file.ready", "resource": {"id": "f1"}}),
    ("d05", {"event_type": "file.upload.completed", "resource": {"id": "f2"}}),
    ("d06", {"event_type": "review.status.changed", "resource": {"id": "f1", "review_status": "needs_review"}}),
    ("d07", {"event_type": "file.status.changed", "resource": {"id": "f2", "status": "failed"}}),
    ("d08", {"event_type": "review.status.changed", "resource": {"id": "f1", "review_status": "approved"}}),
    ("d09", {"event_type": "file.ready", "resource": {"id": "f2"}}),
    ("d10", {"event_type": "review.status.changed", "resource": {"id": "f2", "review_status": "rejected"}}),
    ("d11", {"event_type": "file.versioned", "resource": {"id": "f2", "version": 2}}),
    ("d12", {"event_type": "file.ready", "resource": {"id": "f2"}}),
    ("d13", {"event_type": "comment.created", "resource": {"id": "c1", "type": "comment", "file_id": "f1", "text": "Lovely grade", "author": "Ana"}}),
]  # fmt: skip

# What Discord must show, in this order: (title, description).
EXPECTED: list[tuple[str, str]] = [
    ("shot_010.mov", f"New file → {S.UPLOADING.value}"),
    ("shot_020.mov", f"New file → {S.UPLOADING.value}"),
    ("shot_010.mov", f"{S.UPLOADING.value} → {S.PROCESSING.value}"),
    ("shot_010.mov", f"{S.PROCESSING.value} → {S.COMPLETED.value}"),
    ("shot_020.mov", f"{S.UPLOADING.value} → {S.PROCESSING.value}"),
    ("shot_010.mov", f"{S.COMPLETED.value} → {S.WAITING_APPROVAL.value}"),
    ("shot_020.mov", f"{S.PROCESSING.value} → {S.FAILED.value}"),
    ("shot_010.mov", f"{S.WAITING_APPROVAL.value} → {S.APPROVED.value}"),
    ("shot_020.mov", f"{S.FAILED.value} → {S.COMPLETED.value}"),
    ("shot_020.mov", f"{S.COMPLETED.value} → {S.REJECTED.value}"),
    ("shot_020.mov", f"{S.REJECTED.value} → {S.PROCESSING.value}"),
    ("shot_020.mov", f"{S.PROCESSING.value} → {S.COMPLETED.value}"),
    ("💬 New comment · shot_010.mov", "Lovely grade"),
]

EVERYTHING = AnnouncePolicy(enabled=True, comments=True)


class Journal(DeliveryInbox, DeliveryQueue, Protocol):
    """Where the receiver commits deliveries and the worker takes them from."""


class Producer:
    """The real ``DeliveryWorker``: each delivery is appended, then applied in its own pass."""

    def __init__(
        self,
        queue: Journal,
        records: RecordStore,
        sim: SimulatedTime,
        announce: AnnouncePolicy = EVERYTHING,
    ) -> None:
        self.queue = queue
        self.sim = sim
        self.worker = DeliveryWorker(
            queue,
            records,
            read_body,
            sim,
            failure_backoff=Policies().worker_failure,
            enrich_backoff=Policies().enrichment,
            announce=announce,
            sleep=sim.sleep,
        )
        self.played = 0

    async def deliver(self, delivery_id: str, payload: dict[str, Any]) -> None:
        """Commit one delivery as the receiver does, then let the worker apply it."""
        body = json.dumps(payload).encode()
        event = read_body(body)
        await self.queue.append(
            IncomingDelivery(
                delivery_id=delivery_id,
                received_at=self.sim.now(),
                body=body,
                event_type=event.event_type,
                file_id=event.file_id,
            )
        )
        assert await self.worker.run_once()

    async def play(self, script: list[tuple[str, dict[str, Any]]], *, twice: bool = False) -> None:
        """Deliver a script; with ``twice`` every delivery is repeated, same id and new id."""
        for delivery_id, payload in script:
            await self.deliver(delivery_id, payload)
            if twice:
                await self.deliver(delivery_id, payload)
                await self.deliver(delivery_id + "-again", payload)
            self.played += 1


def shown(fake: FakeDiscord) -> list[tuple[str, str]]:
    """What the channel shows, in order: (title, description) per message."""
    return [(m["embeds"][0]["title"], m["embeds"][0]["description"]) for m in fake.messages]


class MakeDispatcher:
    """Builds dispatchers on simulated time, each with a real ``DiscordNotifier``."""

    def __init__(self, sim: SimulatedTime) -> None:
        self.sim = sim
        self.notifiers: list[DiscordNotifier] = []

    def __call__(
        self,
        outbox: Any,
        url: str,
        *,
        sleep: Sleep | None = None,
        backoff: Backoff | None = None,
        route: str | None = None,
        exclude: Sequence[str] = (),
    ) -> NotificationDispatcher:
        """A dispatcher over ``outbox`` posting to ``url``, short timeouts, default policies."""
        config = DiscordConfig(webhook_url=url, timeout=1.0, connect_timeout=1.0)
        notifier = DiscordNotifier(config, monotonic=self.sim.monotonic)
        self.notifiers.append(notifier)
        return NotificationDispatcher(
            outbox,
            outbox,
            notifier,
            self.sim,
            outage_backoff=backoff or Policies().notification_outage,
            sleep=sleep or self.sim.sleep,
            route=route,
            exclude=exclude,
        )


@pytest.fixture
def sim() -> SimulatedTime:
    """Simulated time shared by everything in a test."""
    return SimulatedTime()


@pytest.fixture
def fake(sim: SimulatedTime) -> Iterator[FakeDiscord]:
    """Fake Discord with a 5 per 2 s bucket on simulated time."""
    with FakeDiscord(bucket_limit=5, bucket_window=2.0, clock=sim.monotonic) as server:
        yield server


@pytest.fixture
def db() -> MemoryDatabase:
    """The in-memory database: deliveries, records, outbox and destinations."""
    return MemoryDatabase()


@pytest.fixture
def producer(db: MemoryDatabase, sim: SimulatedTime) -> Producer:
    """The worker over the in-memory database, announcing every change and comment."""
    return Producer(db, db, sim)


@pytest.fixture
async def make(sim: SimulatedTime) -> AsyncIterator[MakeDispatcher]:
    """Builds dispatchers on simulated time; closes their notifiers' clients afterwards."""
    factory = MakeDispatcher(sim)
    yield factory
    for notifier in factory.notifiers:
        await notifier.aclose()


async def test_every_status_change_arrives_once_in_order_even_when_deliveries_repeat(
    sim: SimulatedTime,
    fake: FakeDiscord,
    db: MemoryDatabase,
    producer: Producer,
    make: MakeDispatcher,
) -> None:
    """A scripted sequence, each delivery sent twice, shows every change once, in order, paced."""
    await producer.play(SCRIPT, twice=True)
    assert len(await db.due(100)) == len(EXPECTED)
    dispatcher = make(db, fake.webhook_url)
    assert await dispatcher.drain() == len(EXPECTED)
    assert shown(fake) == EXPECTED
    assert fake.answers[429] == 0
    assert sim.elapsed >= 2.0 * (len(EXPECTED) // 5 - 1)
    state = dispatcher.state()
    assert (state["destination"], state["sent"], state["dead_lettered"]) == ("ok", 13, 0)
    assert state["last_sent_at"] == sim.now().isoformat()
    assert await db.due(100) == [] and await db.dead_letters() == []


async def test_a_discord_outage_of_minutes_loses_nothing(
    sim: SimulatedTime,
    fake: FakeDiscord,
    producer: Producer,
    make: MakeDispatcher,
) -> None:
    """Five simulated minutes of 503s, a Cloudflare 429 and 502 bursts end with all delivered once."""
    await producer.play(SCRIPT[:6])
    fake.fail_next(429, html=True, retry_after=20)
    fake.fail_next(502, count=2)
    fake.outage(until=sim.elapsed + 300, status=503)
    dispatcher = make(producer.queue, fake.webhook_url)
    outcomes = set()
    for _ in range(200):
        result = await dispatcher.run_once()
        outcomes.add(result.outcome)
        if result.outcome is PassOutcome.OUTAGE:
            assert 0 < result.wait <= 300
            await sim.sleep(result.wait)
        if sim.elapsed > 120 and producer.played < len(SCRIPT):
            await producer.play(SCRIPT[6:])  # changes keep coming during the outage
        if result.outcome is PassOutcome.IDLE and producer.played == len(SCRIPT):
            break
    assert shown(fake) == EXPECTED
    assert sim.elapsed >= 300
    assert PassOutcome.OUTAGE in outcomes
    assert fake.answers[503] > 3 and fake.answers[502] == 2
    assert 20.0 in sim.sleeps


async def test_a_429_waits_retry_after_and_resends(
    sim: SimulatedTime, fake: FakeDiscord, producer: Producer, make: MakeDispatcher
) -> None:
    """A JSON 429 (global) makes the dispatcher wait ``retry_after`` then send the same message."""
    await producer.play(SCRIPT[:3])
    fake.fail_next(429, retry_after=3.5)
    dispatcher = make(producer.queue, fake.webhook_url)
    result = await dispatcher.run_once()
    assert (result.outcome, result.settled) == (PassOutcome.MORE, 3)
    assert shown(fake) == EXPECTED[:3]
    assert 3.5 in sim.sleeps
    assert fake.answers[429] == 1 and fake.answers[200] == 3
    assert dispatcher.state()["rate_limited"] == 1


async def test_a_transient_failure_ends_the_pass_and_the_outage_backoff_grows_to_its_cap(
    sim: SimulatedTime,
    fake: FakeDiscord,
    db: MemoryDatabase,
    producer: Producer,
    make: MakeDispatcher,
) -> None:
    """5xx: no retry inside the pass; each OUTAGE pass waits longer, capped; a success resets it."""
    await producer.play(SCRIPT[:1])
    fake.fail_next(502, count=8)
    dispatcher = make(db, fake.webhook_url, backoff=exponential(1.0, 30.0))
    waits = []
    for _ in range(8):
        result = await dispatcher.run_once()
        assert (result.outcome, result.settled) == (PassOutcome.OUTAGE, 0)
        waits.append(result.wait)
    assert waits == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
    assert sim.sleeps == [] and fake.answers[502] == 8
    assert len(await db.due(10)) == 1 and shown(fake) == []
    assert (await dispatcher.run_once()).outcome is PassOutcome.MORE
    assert shown(fake) == EXPECTED[:1]
    await producer.play(SCRIPT[1:2])
    fake.fail_next(500)
    assert await dispatcher.drain() == 1  # waits the first step again: the success reset it
    assert sim.sleeps == [1.0] and fake.answers[500] == 1
    assert shown(fake) == EXPECTED[:2] and await db.due(10) == []


async def test_the_default_outage_backoff_is_jittered_and_capped_at_five_minutes(
    fake: FakeDiscord, producer: Producer, make: MakeDispatcher
) -> None:
    """With the default policy the waits grow 1-2, 2-3, 4-5 s ... and never pass 300 s."""
    await producer.play(SCRIPT[:1])
    fake.fail_next(503, count=12)
    dispatcher = make(producer.queue, fake.webhook_url)
    waits = [(await dispatcher.run_once()).wait for _ in range(12)]
    assert 1 <= waits[0] <= 2 and 2 <= waits[1] <= 3 and 4 <= waits[2] <= 5
    assert all(0 < w <= 300 for w in waits) and waits[-1] == 300
    assert await dispatcher.drain() == 1


async def test_a_dispatcher_killed_between_commit_and_send_delivers_after_restart(
    sim: SimulatedTime, fake: FakeDiscord, tmp_path: Path, make: MakeDispatcher
) -> None:
    """With the SQLite database, a crash after commit (and one mid-backlog) loses nothing."""
    path = tmp_path / "postflow.sqlite3"
    db = SqliteDatabase(path)
    db.open()
    await Producer(SqliteJournal(db), SqliteRecords(db), sim).play(SCRIPT)

    class Crash(BaseException):
        """The process dies."""

    async def dying_sleep(seconds: float) -> None:
        if len(fake.messages) >= 5:
            raise Crash
        await sim.sleep(seconds)

    first = make(SqliteOutbox(db), fake.webhook_url, sleep=dying_sleep)
    with pytest.raises(Crash):
        await first.drain()
    assert len(fake.messages) == 5
    await db.close()

    reopened = SqliteDatabase(path)
    reopened.open()
    try:
        outbox = SqliteOutbox(reopened)
        assert len(await outbox.due(100)) == len(EXPECTED) - 5
        second = make(outbox, fake.webhook_url)
        await second.drain()
        assert shown(fake) == EXPECTED
        assert await outbox.due(100) == []
    finally:
        await reopened.close()


async def test_at_least_once_window_a_lost_answer_repeats_only_that_message(
    fake: FakeDiscord, producer: Producer, make: MakeDispatcher
) -> None:
    """Discord accepted but its answer was lost: that one message is sent again, nothing else."""
    await producer.play(SCRIPT[:3])
    fake.drop_next(after_accept=True)
    await make(producer.queue, fake.webhook_url).drain()
    assert shown(fake) == [EXPECTED[0], *EXPECTED[:3]]


async def test_404_stops_sending_at_once_and_keeps_the_backlog(
    fake: FakeDiscord, db: MemoryDatabase, producer: Producer, make: MakeDispatcher
) -> None:
    """A deleted webhook: one 404, destination broken, no retry loop, backlog kept until reset."""
    await producer.play(SCRIPT[:3])
    dispatcher = make(db, fake.webhook_url)
    await dispatcher.drain()
    fake.delete_webhook()
    await producer.play(SCRIPT[3:])
    assert (await dispatcher.run_once()).outcome is PassOutcome.BROKEN
    for _ in range(3):
        await dispatcher.drain()
    restarted = make(db, fake.webhook_url)
    assert (await restarted.run_once()).outcome is PassOutcome.BROKEN
    await restarted.drain()
    assert fake.answers[404] == 1
    assert len(await db.due(100)) == len(EXPECTED) - 3
    key = destination_key(fake.webhook_url)
    saved = await db.destination(key)
    assert saved.broken and saved.since is not None
    assert saved.reason is not None and "Unknown Webhook" in saved.reason
    figures = restarted.state()
    assert figures["destination_broken"] is True and figures["destination"] == "broken"
    assert "Unknown Webhook" in figures["destination_reason"] and figures["broken_since"]
    assert json.dumps(figures)
    fake.deleted = False
    await restarted.reset_destination()
    await restarted.drain()
    assert shown(fake) == EXPECTED
    assert restarted.state()["destination"] == "ok"
    assert restarted.state()["destination_broken"] is False
    assert not (await db.destination(key)).broken


async def test_a_new_webhook_url_resumes_after_a_401(
    sim: SimulatedTime, fake: FakeDiscord, producer: Producer, make: MakeDispatcher
) -> None:
    """A revoked token breaks the destination; configuring another URL delivers the backlog."""
    await producer.play(SCRIPT)
    fake.revoke_token()
    await make(producer.queue, fake.webhook_url).drain()
    assert fake.answers[401] == 1 and fake.messages == []
    with FakeDiscord(bucket_limit=5, clock=sim.monotonic) as replacement:
        await make(producer.queue, replacement.webhook_url).drain()
        assert shown(replacement) == EXPECTED


async def test_a_400_dead_letters_that_one_and_replay_resends_it(
    fake: FakeDiscord, db: MemoryDatabase, producer: Producer, make: MakeDispatcher
) -> None:
    """Discord refuses one body: it is dead-lettered with Discord's message, the rest go on."""
    await producer.play(SCRIPT[:4])
    fake.fail_next(400, message="Invalid Form Body", code=50035)
    dispatcher = make(db, fake.webhook_url)
    await dispatcher.drain()
    assert shown(fake) == EXPECTED[1:4]
    (letter,) = await db.dead_letters()
    assert "Invalid Form Body (code 50035)" in letter.reason
    assert dispatcher.state()["dead_lettered"] == 1
    assert await replay_dead_letters(db) == 1
    await dispatcher.drain()
    assert shown(fake) == [*EXPECTED[1:4], EXPECTED[0]]
    assert await db.dead_letters() == []


async def test_oversized_names_and_comments_are_truncated_never_rejected(
    fake: FakeDiscord, db: MemoryDatabase, producer: Producer, make: MakeDispatcher
) -> None:
    """A 5000-character name and a 10000-character comment reach Discord cut, not refused."""
    long_name = "@everyone " + "n" * 5000 + ".mov"
    await producer.play(
        [
            ("x1", {"event_type": "file.created", "resource": {"id": "f9", "name": long_name}}),
            ("x2", {"event_type": "comment.created", "resource": {"type": "comment", "id": "c9", "file_id": "f9", "text": "c" * 10_000, "author": "A" * 600}}),
        ]
    )  # fmt: skip
    await make(db, fake.webhook_url).drain()
    assert fake.rejected == [] and await db.dead_letters() == []
    assert [len(m["embeds"][0]["title"]) for m in fake.messages] == [256, 255]
    assert fake.messages[1]["embeds"][0]["description"].endswith("…")
    assert fake.pings == []


async def test_without_a_destination_nothing_is_queued_and_nothing_fails(
    sim: SimulatedTime, db: MemoryDatabase
) -> None:
    """No webhook URL (policy disabled): every change is applied, counted as skipped, never queued."""
    producer = Producer(db, db, sim, AnnouncePolicy(enabled=False))
    await producer.play(SCRIPT)
    assert await db.due(100) == []
    assert producer.worker.unannounced_total == len(EXPECTED)
    stats = await db.stats()
    assert (stats.backlog, stats.quarantined, stats.notifications_pending) == (0, 0, 0)
    assert db.records["f2"].status is S.COMPLETED


async def test_filtered_statuses_and_comments_are_never_queued(
    sim: SimulatedTime, fake: FakeDiscord, db: MemoryDatabase, make: MakeDispatcher
) -> None:
    """Only the configured statuses are queued and announced; comments are off by default."""
    wanted = frozenset({S.APPROVED, S.REJECTED})
    producer = Producer(db, db, sim, AnnouncePolicy(enabled=True, statuses=wanted))
    await producer.play(SCRIPT)
    assert len(await db.due(100)) == 2
    assert producer.worker.unannounced_total == len(EXPECTED) - 2
    await make(db, fake.webhook_url).drain()
    assert shown(fake) == [EXPECTED[7], EXPECTED[9]]
    assert await db.due(100) == []


async def test_the_url_never_appears_in_logs_or_status(
    fake: FakeDiscord,
    db: MemoryDatabase,
    producer: Producer,
    make: MakeDispatcher,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Through 429, 502, 400 and 404 the token is in no log line, reason or status field."""
    caplog.set_level(logging.DEBUG)
    await producer.play(SCRIPT[:6])
    fake.fail_next(429, html=True)
    fake.fail_next(502)
    fake.fail_next(400, message="Invalid Form Body", code=50035)
    dispatcher = make(db, fake.webhook_url)
    assert (await dispatcher.run_once()).outcome is PassOutcome.OUTAGE
    assert (await dispatcher.run_once()).outcome is PassOutcome.MORE
    fake.delete_webhook()
    await producer.play(SCRIPT[6:])
    await dispatcher.drain()
    letters = await db.dead_letters()
    saved = await db.destination(destination_key(fake.webhook_url))
    text = "\n".join(
        [
            caplog.text,
            repr(saved),
            json.dumps(dispatcher.state()),
            *(repr(notifier) for notifier in make.notifiers),
            *(d.reason for d in letters),
        ]
    )
    assert dispatcher.state()["destination"] == "broken" and len(letters) == 1
    assert "discord webhook …/8899" in text
    assert fake.token not in text and fake.webhook_url not in text


async def test_the_running_loop_is_woken_from_any_thread_and_stops_cleanly(
    tmp_path: Path,
) -> None:
    """``start`` runs the loop; a ``wake`` from another thread after a commit makes it send."""
    sim = SimulatedTime()
    db = SqliteDatabase(tmp_path / "postflow.sqlite3")
    db.open()
    outbox = SqliteOutbox(db)
    with FakeDiscord(bucket_limit=50) as fake:
        notifier = DiscordNotifier(DiscordConfig(webhook_url=fake.webhook_url))
        dispatcher = NotificationDispatcher(
            outbox, outbox, notifier, sim, outage_backoff=Policies().notification_outage
        )
        await dispatcher.start()
        await asyncio.sleep(0.05)  # the loop is now idle until woken
        await Producer(SqliteJournal(db), SqliteRecords(db), sim).play(SCRIPT[:4])
        await asyncio.sleep(0.2)
        assert fake.messages == []  # nothing rang: the idle loop did not poll
        await asyncio.to_thread(dispatcher.wake)
        await eventually(lambda: len(fake.messages) >= 4)
        assert dispatcher.state()["running"]
        await dispatcher.stop()
        assert shown(fake) == EXPECTED[:4]
        assert not dispatcher.state()["running"]
        await notifier.aclose()
    await db.close()


async def eventually(check: Callable[[], object], timeout: float = 10.0) -> None:
    """Poll ``check`` on the event loop until it is true; fail after ``timeout`` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(0.02)


async def test_each_destination_keeps_its_own_order_pacing_and_broken_state(
    sim: SimulatedTime, db: MemoryDatabase
) -> None:
    """Two routes over one outbox: the film channel broken, the default one (with a removed
    route's leftovers) still gets everything of its own, in commit order."""
    producer = Producer(
        db, db, sim, AnnouncePolicy(enabled=True, routes=(Route("p-film"), Route("p-gone")))
    )
    for n, project in enumerate(["p-film", "p-x", "p-gone", "p-film", "p-x"]):
        payload = {"event_type": "file.ready", "resource": {"id": f"f{n}", "name": f"{n}.mov"}}
        await producer.deliver(f"d{n}", {**payload, "project": {"id": project}})
    with (
        FakeDiscord(bucket_limit=1, bucket_window=2.0, clock=sim.monotonic) as main,
        FakeDiscord(clock=sim.monotonic) as film,
    ):
        film.delete_webhook()
        factory = MakeDispatcher(sim)
        film_side = factory(db, film.webhook_url, route="project:p-film")
        default = factory(
            db, main.webhook_url, exclude=["project:p-film"]
        )  # p-gone is no route now
        group = Dispatchers([default, film_side])
        await group.drain()
        for notifier in factory.notifiers:
            await notifier.aclose()
    assert [m["embeds"][0]["title"] for m in main.messages] == ["1.mov", "2.mov", "4.mov"]
    assert film.messages == []
    state = group.state()
    assert state["destination_broken"] and state["sent"] == 3
    by_route = {d["route"]: d for d in state["destinations"]}
    assert by_route["project:p-film"]["destination"] == "broken"
    assert by_route["default"]["destination"] == "ok"
    assert [n.file_id for n in await db.due(10)] == ["f0", "f3"]
    # One message per 2 s in the default channel's bucket: it waited between its three sends.
    assert len([wait for wait in sim.sleeps if wait > 1.0]) >= 2
