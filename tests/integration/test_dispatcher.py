"""``NotificationDispatcher`` end to end: outbox -> dispatcher -> notifier -> fake Discord."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from postflow_webhooks.adapters.discord import DiscordConfig
from postflow_webhooks.adapters.memory import MemoryJournal
from postflow_webhooks.adapters.sqlite.journal import SqliteJournal
from postflow_webhooks.app.dispatcher import (
    NotificationDispatcher,
    PassOutcome,
    default_retrying,
    replay_dead_letters,
)
from postflow_webhooks.domain.events import WebhookEvent
from postflow_webhooks.domain.journal import BatchResult
from postflow_webhooks.domain.ports import NotificationOutbox
from postflow_webhooks.domain.records import Enrichment, UploadRecord
from postflow_webhooks.domain.service import apply_event
from postflow_webhooks.domain.statuses import PostflowStatus
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
    ("💬 shot_010.mov", "Lovely grade"),
]


class Producer:
    """Plays the worker: applies deliveries with the pure domain, commits record + notifications."""

    def __init__(self, outbox: Any, sim: SimulatedTime) -> None:
        self.outbox = outbox
        self.sim = sim
        self.records: dict[str, UploadRecord] = {}
        self.seen: set[str] = set()

    async def deliver(self, delivery_id: str, payload: dict[str, Any]) -> int:
        """Apply one delivery (a repeated delivery id is dropped, as the journal does)."""
        if delivery_id in self.seen:
            return 0
        self.seen.add(delivery_id)
        event = WebhookEvent.from_payload(json.loads(json.dumps(payload)))
        file_id = event.file_id or "f1"
        decision = apply_event(
            self.records.get(file_id),
            event,
            Enrichment(),
            at=self.sim.now(),
            delivery_id=delivery_id,
        )
        if decision.record is not None:
            self.records[decision.record.file_id] = decision.record
        await self.outbox.commit(
            BatchResult(
                at=self.sim.now(),
                records=(decision.record,) if decision.record else (),
                notifications=decision.notifications,
            )
        )
        return len(decision.notifications)

    async def play(self, script: list[tuple[str, dict[str, Any]]], *, twice: bool = False) -> int:
        """Deliver a script; with ``twice`` every delivery is repeated, same id and new id."""
        count = 0
        for delivery_id, payload in script:
            count += await self.deliver(delivery_id, payload)
            if twice:
                count += await self.deliver(delivery_id, payload)
                count += await self.deliver(delivery_id + "-again", payload)
        return count


def shown(fake: FakeDiscord) -> list[tuple[str, str]]:
    """What the channel shows, in order: (title, description) per message."""
    return [(m["embeds"][0]["title"], m["embeds"][0]["description"]) for m in fake.messages]


@pytest.fixture
def sim() -> SimulatedTime:
    """Simulated time shared by everything in a test."""
    return SimulatedTime()


@pytest.fixture
def fake(sim: SimulatedTime) -> Iterator[FakeDiscord]:
    """Fake Discord with a 5 per 2 s bucket on simulated time."""
    with FakeDiscord(bucket_limit=5, bucket_window=2.0, clock=sim.monotonic) as server:
        yield server


def dispatcher_for(
    outbox: NotificationOutbox, url: str | None, sim: SimulatedTime, **changes: Any
) -> NotificationDispatcher:
    """A dispatcher on simulated time, comments on, short timeouts."""
    config = DiscordConfig(webhook_url=url, comments=True, timeout=1.0, connect_timeout=1.0)
    config = attrs.evolve(config, **changes)
    return NotificationDispatcher.from_config(
        config,
        outbox,
        clock=sim,
        sleep=sim.sleep,
        retrying=default_retrying(sleep=sim.sleep),
        monotonic=sim.monotonic,
    )


async def test_every_status_change_arrives_once_in_order_even_when_deliveries_repeat(
    sim: SimulatedTime, fake: FakeDiscord
) -> None:
    """A scripted sequence, each delivery sent twice, shows every change once, in order, paced."""
    journal = MemoryJournal()
    producer = Producer(journal, sim)
    assert await producer.play(SCRIPT, twice=True) == len(EXPECTED)
    dispatcher = dispatcher_for(journal, fake.webhook_url, sim)
    assert await dispatcher.drain() == len(EXPECTED)
    assert shown(fake) == EXPECTED
    assert fake.answers[429] == 0
    assert sim.elapsed >= 2.0 * (len(EXPECTED) // 5 - 1)
    state = await dispatcher.snapshot()
    assert (state.destination, state.pending, state.dead, state.sent) == ("ok", 0, 0, 13)
    assert state.last_sent_at == sim.now()
    assert await journal.due(100) == []


async def test_a_discord_outage_of_minutes_loses_nothing(
    sim: SimulatedTime, fake: FakeDiscord
) -> None:
    """Five simulated minutes of 503s, a Cloudflare 429 and 502 bursts end with all delivered once."""
    started = time.monotonic()
    journal = MemoryJournal()
    producer = Producer(journal, sim)
    await producer.play(SCRIPT[:6])
    fake.fail_next(429, html=True, retry_after=20)
    fake.fail_next(502, count=2)
    fake.outage(until=sim.elapsed + 300, status=503)
    dispatcher = dispatcher_for(journal, fake.webhook_url, sim)
    outcomes = set()
    for _ in range(200):
        result = await dispatcher.run_once()
        outcomes.add(result.outcome)
        if result.outcome is PassOutcome.OUTAGE:
            await sim.sleep(result.wait)
        if sim.elapsed > 120 and len(producer.seen) < len(SCRIPT):
            await producer.play(SCRIPT[6:])  # changes keep coming during the outage
        if result.outcome is PassOutcome.IDLE and len(producer.seen) == len(SCRIPT):
            break
    assert shown(fake) == EXPECTED
    assert sim.elapsed >= 300
    assert PassOutcome.OUTAGE in outcomes
    assert fake.answers[503] > 3 and fake.answers[502] == 2
    assert 20.0 in sim.sleeps
    assert time.monotonic() - started < 20


async def test_a_429_waits_retry_after_and_resends(sim: SimulatedTime, fake: FakeDiscord) -> None:
    """A JSON 429 (global) makes the dispatcher wait ``retry_after`` then send the same message."""
    journal = MemoryJournal()
    await Producer(journal, sim).play(SCRIPT[:3])
    fake.fail_next(429, retry_after=3.5)
    dispatcher = dispatcher_for(journal, fake.webhook_url, sim)
    await dispatcher.drain()
    assert shown(fake) == EXPECTED[:3]
    assert 3.5 in sim.sleeps
    assert (await dispatcher.snapshot()).rate_limited == 1


async def test_transient_errors_retry_with_bounded_backoff(
    sim: SimulatedTime, fake: FakeDiscord
) -> None:
    """502 bursts retry with growing jittered waits; past the attempts the pass pauses, then resumes."""
    journal = MemoryJournal()
    producer = Producer(journal, sim)
    await producer.play(SCRIPT[:1])
    fake.fail_next(502, count=3)
    dispatcher = dispatcher_for(journal, fake.webhook_url, sim)
    assert (await dispatcher.run_once()).outcome is PassOutcome.MORE
    waits = list(sim.sleeps)
    assert len(waits) == 3 and 1 <= waits[0] <= 2 and 2 <= waits[1] <= 3 and 4 <= waits[2] <= 5
    await producer.play(SCRIPT[1:2])
    fake.fail_next(500, count=5)
    result = await dispatcher.run_once()
    assert (result.outcome, result.wait) == (PassOutcome.OUTAGE, 30.0)
    assert shown(fake) == EXPECTED[:1]
    assert len(await journal.due(10)) == 1
    await dispatcher.drain()
    assert shown(fake) == EXPECTED[:2]


async def test_a_dispatcher_killed_between_commit_and_send_delivers_after_restart(
    sim: SimulatedTime, fake: FakeDiscord, tmp_path: Path
) -> None:
    """With the SQLite journal, a crash after commit (and one mid-backlog) loses nothing on restart."""
    path = tmp_path / "journal.db"
    journal = SqliteJournal(path)
    journal.open()
    await Producer(journal, sim).play(SCRIPT)

    class Crash(BaseException):
        """The process dies."""

    async def dying_sleep(seconds: float) -> None:
        if len(fake.messages) >= 5:
            raise Crash
        await sim.sleep(seconds)

    config = DiscordConfig(webhook_url=fake.webhook_url, comments=True)
    first = NotificationDispatcher.from_config(
        config, journal, clock=sim, sleep=dying_sleep, monotonic=sim.monotonic
    )
    with pytest.raises(Crash):
        await first.drain()
    assert len(fake.messages) == 5
    await journal.close()

    reopened = SqliteJournal(path)
    reopened.open()
    try:
        assert len(await reopened.due(100)) == len(EXPECTED) - 5
        second = dispatcher_for(reopened, fake.webhook_url, sim)
        await second.drain()
        assert shown(fake) == EXPECTED
        assert await reopened.due(100) == []
    finally:
        await reopened.close()


async def test_at_least_once_window_a_lost_answer_repeats_only_that_message(
    sim: SimulatedTime, fake: FakeDiscord
) -> None:
    """Discord accepted but its answer was lost: that one message is sent again, nothing else."""
    journal = MemoryJournal()
    await Producer(journal, sim).play(SCRIPT[:3])
    fake.drop_next(after_accept=True)
    await dispatcher_for(journal, fake.webhook_url, sim).drain()
    assert shown(fake) == [EXPECTED[0], *EXPECTED[:3]]


async def test_404_stops_sending_at_once_and_keeps_the_backlog(
    sim: SimulatedTime, fake: FakeDiscord
) -> None:
    """A deleted webhook: one 404, destination broken, no retry loop, backlog kept until reset."""
    journal = MemoryJournal()
    producer = Producer(journal, sim)
    await producer.play(SCRIPT[:3])
    dispatcher = dispatcher_for(journal, fake.webhook_url, sim)
    await dispatcher.drain()
    fake.delete_webhook()
    await producer.play(SCRIPT[3:])
    assert (await dispatcher.run_once()).outcome is PassOutcome.BROKEN
    for _ in range(3):
        await dispatcher.drain()
    restarted = dispatcher_for(journal, fake.webhook_url, sim)
    await restarted.drain()
    assert fake.answers[404] == 1
    assert len(await journal.due(100)) == len(EXPECTED) - 3
    state = await restarted.snapshot()
    assert state.destination == "broken" and not state.healthy
    assert state.reason is not None and "Unknown Webhook" in state.reason
    assert state.pending == len(EXPECTED) - 3 and state.broken_since is not None
    figures = restarted.state()
    assert figures["destination_broken"] is True and figures["destination"] == "broken"
    assert "Unknown Webhook" in figures["destination_reason"] and json.dumps(figures)
    fake.deleted = False
    await restarted.reset_destination()
    await restarted.drain()
    assert shown(fake) == EXPECTED
    assert (await restarted.snapshot()).destination == "ok"
    assert restarted.state()["destination_broken"] is False


async def test_a_new_webhook_url_resumes_after_a_401(sim: SimulatedTime, fake: FakeDiscord) -> None:
    """A revoked token breaks the destination; configuring another URL delivers the backlog."""
    journal = MemoryJournal()
    await Producer(journal, sim).play(SCRIPT)
    fake.revoke_token()
    await dispatcher_for(journal, fake.webhook_url, sim).drain()
    assert fake.answers[401] == 1 and fake.messages == []
    with FakeDiscord(bucket_limit=5, clock=sim.monotonic) as replacement:
        await dispatcher_for(journal, replacement.webhook_url, sim).drain()
        assert shown(replacement) == EXPECTED


async def test_a_400_dead_letters_that_one_and_replay_resends_it(
    sim: SimulatedTime, fake: FakeDiscord
) -> None:
    """Discord refuses one body: it is dead-lettered with Discord's message, the rest go on."""
    journal = MemoryJournal()
    await Producer(journal, sim).play(SCRIPT[:4])
    fake.fail_next(400, message="Invalid Form Body", code=50035)
    dispatcher = dispatcher_for(journal, fake.webhook_url, sim)
    await dispatcher.drain()
    assert shown(fake) == EXPECTED[1:4]
    (letter,) = await journal.dead_letters()
    assert "Invalid Form Body (code 50035)" in letter.reason
    assert (await dispatcher.snapshot()).dead == 1
    assert await replay_dead_letters(journal) == 1
    await dispatcher.drain()
    assert shown(fake) == [*EXPECTED[1:4], EXPECTED[0]]
    assert await journal.dead_letters() == []


async def test_oversized_names_and_comments_are_truncated_never_rejected(
    sim: SimulatedTime, fake: FakeDiscord
) -> None:
    """A 5000-character name and a 10000-character comment reach Discord cut, not refused."""
    journal = MemoryJournal()
    long_name = "@everyone " + "n" * 5000 + ".mov"
    await Producer(journal, sim).play(
        [
            ("x1", {"event_type": "file.created", "resource": {"id": "f9", "name": long_name}}),
            ("x2", {"event_type": "comment.created", "resource": {"type": "comment", "id": "c9", "file_id": "f9", "text": "c" * 10_000, "author": "A" * 600}}),
        ]
    )  # fmt: skip
    await dispatcher_for(journal, fake.webhook_url, sim).drain()
    assert fake.rejected == [] and await journal.dead_letters() == []
    assert [len(m["embeds"][0]["title"]) for m in fake.messages] == [256, 255]
    assert fake.messages[1]["embeds"][0]["description"].endswith("…")
    assert fake.pings == []


async def test_without_a_url_notifications_are_skipped_and_nothing_fails(
    sim: SimulatedTime,
) -> None:
    """No webhook URL: every notification is settled as skipped; the state says disabled."""
    journal = MemoryJournal()
    await Producer(journal, sim).play(SCRIPT)
    dispatcher = dispatcher_for(journal, None, sim)
    assert await dispatcher.drain() == len(EXPECTED)
    state = await dispatcher.snapshot()
    assert (state.destination, state.pending, state.skipped) == ("disabled", 0, len(EXPECTED))


async def test_filtered_statuses_and_comments_are_skipped(
    sim: SimulatedTime, fake: FakeDiscord
) -> None:
    """Only the configured statuses are announced; comments are off by default."""
    journal = MemoryJournal()
    await Producer(journal, sim).play(SCRIPT)
    wanted = frozenset({S.APPROVED, S.REJECTED})
    await dispatcher_for(journal, fake.webhook_url, sim, statuses=wanted, comments=False).drain()
    assert shown(fake) == [EXPECTED[7], EXPECTED[9]]
    assert await journal.due(100) == []


async def test_the_url_never_appears_in_logs_or_status(
    sim: SimulatedTime, fake: FakeDiscord, caplog: pytest.LogCaptureFixture
) -> None:
    """Through 429, 502, 400 and 404 the token is in no log line, reason or status field."""
    caplog.set_level(logging.DEBUG)
    journal = MemoryJournal()
    producer = Producer(journal, sim)
    await producer.play(SCRIPT[:6])
    fake.fail_next(429, html=True)
    fake.fail_next(502)
    fake.fail_next(400, message="Invalid Form Body", code=50035)
    dispatcher = dispatcher_for(journal, fake.webhook_url, sim)
    await dispatcher.run_once()
    fake.delete_webhook()
    await producer.play(SCRIPT[6:])
    await dispatcher.drain()
    state = await dispatcher.snapshot()
    letters = await journal.dead_letters()
    text = "\n".join(
        [
            caplog.text,
            repr(state),
            json.dumps(dispatcher.state()),
            repr(dispatcher.notifier),
            *(d.reason for d in letters),
        ]
    )
    assert state.destination == "broken" and len(letters) == 1
    assert "discord webhook …/8899" in text
    assert fake.token not in text and fake.webhook_url not in text


async def test_the_running_loop_is_woken_from_any_thread_and_stops_cleanly(tmp_path: Path) -> None:
    """``start`` runs the loop; a ``wake`` from another thread after a commit makes it send."""
    sim = SimulatedTime()
    journal = SqliteJournal(tmp_path / "journal.db")
    journal.open()
    with FakeDiscord(bucket_limit=50) as fake:
        config = DiscordConfig(webhook_url=fake.webhook_url, comments=True)
        dispatcher = NotificationDispatcher.from_config(
            config, journal, clock=sim, poll_interval=60.0
        )
        await dispatcher.start()
        await asyncio.sleep(0.05)  # the loop is now idle for a minute unless woken
        await Producer(journal, sim).play(SCRIPT[:4])
        await asyncio.to_thread(dispatcher.wake)
        deadline = time.monotonic() + 10
        while len(fake.messages) < 4 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        assert (await dispatcher.snapshot()).running
        await dispatcher.stop()
        assert shown(fake) == EXPECTED[:4]
        assert not (await dispatcher.snapshot()).running
    await journal.close()
