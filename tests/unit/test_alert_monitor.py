"""The alert monitor: one message when an incident starts, one when it ends, never more."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from postflow_webhooks.adapters.memory import FixedClock, MemoryDatabase
from postflow_webhooks.domain.alerts import AlertState
from postflow_webhooks.domain.health import Finding, Severity
from postflow_webhooks.domain.records import Notification, NotificationKind
from postflow_webhooks.service.alerts import AlertMonitor

pytestmark = pytest.mark.anyio

T0 = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
TITLES = {"tunnel_down": "Tunnel down", "backlog_stale": "Deliveries are not being applied"}


class Conditions:
    """What the fake check says is wrong now; tests edit ``findings``."""

    def __init__(self) -> None:
        self.findings: list[Finding] = []

    async def __call__(self) -> list[Finding]:
        """The findings now."""
        return list(self.findings)


def tunnel_down(since: datetime = T0) -> Finding:
    """The tunnel_down finding."""
    return Finding("tunnel_down", Severity.PROBLEM, "tunnel: failed (edge unreachable)", since)


def monitor(
    db: MemoryDatabase,
    check: Conditions,
    clock: FixedClock,
    *,
    announce: bool = True,
    clear_after: float = 30.0,
) -> AlertMonitor:
    """A monitor over the memory database with the test's titles."""
    return AlertMonitor(
        check, db, clock, titles=TITLES, announce=lambda reason: announce, clear_after=clear_after
    )


async def alerts(db: MemoryDatabase) -> list[Notification]:
    """The alerts queued in the outbox, in order."""
    return [n for n in await db.due(100) if n.kind is NotificationKind.ALERT]


async def test_an_incident_makes_one_start_and_one_end_alert() -> None:
    """Seen on three looks, gone for 30 s: exactly one start and one end message."""
    db, check, clock = MemoryDatabase(), Conditions(), FixedClock(T0)
    watch = monitor(db, check, clock)
    check.findings = [tunnel_down()]
    for _ in range(3):
        await watch.run_once()
        clock.advance(5)
    check.findings = []
    await watch.run_once()
    clock.advance(29)
    await watch.run_once()
    assert [a.alert.state for a in await alerts(db) if a.alert] == [AlertState.STARTED]
    clock.advance(1)
    result = await watch.run_once()
    queued = await alerts(db)
    assert [a.alert.state for a in queued if a.alert] == [AlertState.STARTED, AlertState.ENDED]
    assert [i.reason for i in result.closed] == ["tunnel_down"]
    ended = queued[1].alert
    assert ended is not None and ended.started_at == T0 and ended.ended_at == clock.now()
    assert queued[0].name == "Tunnel down" and queued[0].file_id == ""
    assert await db.open_incidents() == [] and watch.open == ()


async def test_a_condition_that_flickers_stays_one_incident() -> None:
    """Gone for less than clear_after, then back: no end, no second start."""
    db, check, clock = MemoryDatabase(), Conditions(), FixedClock(T0)
    watch = monitor(db, check, clock)
    check.findings = [tunnel_down()]
    await watch.run_once()
    check.findings = []
    clock.advance(10)
    await watch.run_once()
    check.findings = [tunnel_down()]
    clock.advance(10)
    await watch.run_once()
    check.findings = []
    clock.advance(25)
    await watch.run_once()
    assert len(await alerts(db)) == 1
    assert [i.reason for i in await db.open_incidents()] == ["tunnel_down"]


async def test_open_incidents_survive_a_restart_without_a_second_start() -> None:
    """A new monitor over the same database knows the incident: no repeat, and it still ends."""
    db, check, clock = MemoryDatabase(), Conditions(), FixedClock(T0)
    check.findings = [tunnel_down()]
    await monitor(db, check, clock).run_once()
    restarted = monitor(db, check, clock, clear_after=0)
    await restarted.run_once()
    assert len(await alerts(db)) == 1 and [i.reason for i in restarted.open] == ["tunnel_down"]
    check.findings = []
    await restarted.run_once()
    assert [a.event_type for a in await alerts(db)] == ["alert.started", "alert.ended"]


async def test_findings_without_a_title_never_open_an_incident() -> None:
    """Only the reasons the monitor is given titles for are incidents."""
    db, check, clock = MemoryDatabase(), Conditions(), FixedClock(T0)
    check.findings = [Finding("tracker_behind", Severity.WARNING, "tracker: behind")]
    result = await monitor(db, check, clock).run_once()
    assert result.opened == () and await alerts(db) == [] and await db.open_incidents() == []


async def test_an_unannounced_incident_is_tracked_but_queues_nothing() -> None:
    """announce() false (no channel): the incident opens and closes, no message is queued."""
    db, check, clock = MemoryDatabase(), Conditions(), FixedClock(T0)
    watch = monitor(db, check, clock, announce=False, clear_after=0)
    check.findings = [tunnel_down()]
    assert [i.reason for i in (await watch.run_once()).opened] == ["tunnel_down"]
    check.findings = []
    assert [i.reason for i in (await watch.run_once()).closed] == ["tunnel_down"]
    assert await alerts(db) == []


async def test_incidents_start_when_their_finding_started() -> None:
    """The start time is the finding's own since (the backlog's oldest delivery), else now."""
    db, check, clock = MemoryDatabase(), Conditions(), FixedClock(T0)
    clock.advance(300)
    check.findings = [
        Finding("backlog_stale", Severity.PROBLEM, "backlog: old", T0),
        Finding("tunnel_down", Severity.PROBLEM, "tunnel: failed", None),
    ]
    opened = (await monitor(db, check, clock).run_once()).opened
    assert {i.reason: i.started_at for i in opened} == {
        "backlog_stale": T0,
        "tunnel_down": clock.now(),
    }
