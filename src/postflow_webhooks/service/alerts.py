"""Alerts about the receiver itself: one message when an incident starts, one when it ends.

Each ``run_once`` asks what is wrong now (``check``: the
same findings ``/health`` shows) and compares it with the open incidents,
which are kept in the database (``IncidentLog``), so a restart neither repeats
a start nor forgets an end. A finding whose reason has a title in
``titles`` opens an incident; the incident ends once its finding has been
gone for ``clear_after`` seconds, so a condition that flickers makes one
incident, not one per flicker. Opening or closing an incident and queueing its
alert is one transaction; the alert then goes through the notification outbox
like any status message (durable, paced by the destination's rate limits),
to ``destination`` (the alerts channel's, or the default one).
Whether a reason is announced at all is ``announce(reason)``: an incident is
still tracked, and shown, when it is not.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timedelta

import attrs

from postflow_webhooks.domain.alerts import Alert, AlertState, Incident
from postflow_webhooks.domain.health import Finding
from postflow_webhooks.domain.ports import Clock, IncidentLog
from postflow_webhooks.domain.records import DEFAULT_DESTINATION, Notification, NotificationKind

log = logging.getLogger("postflow_webhooks.alerts")

Check = Callable[[], Awaitable[Sequence[Finding]]]


@attrs.frozen
class AlertPass:
    """What one look changed: the incidents it opened and the ones it closed."""

    opened: tuple[Incident, ...] = ()
    closed: tuple[Incident, ...] = ()


def alert_notification(
    alert: Alert, at: datetime, destination: str = DEFAULT_DESTINATION
) -> Notification:
    """The outbox entry announcing ``alert`` (about the receiver, so no file)."""
    return Notification(
        kind=NotificationKind.ALERT,
        file_id="",
        at=at,
        event_type=f"alert.{alert.state.value}",
        delivery_id=f"alert-{alert.reason}-{int(alert.started_at.timestamp())}",
        version=0,
        name=alert.title,
        alert=alert,
        destination=destination,
    )


class AlertMonitor:
    """Turns findings into incidents and incidents into start and end alerts."""

    def __init__(
        self,
        check: Check,
        incidents: IncidentLog,
        clock: Clock,
        *,
        titles: Mapping[str, str],
        announce: Callable[[str], bool],
        clear_after: float = 30.0,
        destination: str = DEFAULT_DESTINATION,
    ) -> None:
        self._check = check
        self._incidents = incidents
        self._clock = clock
        self._titles = dict(titles)
        self._announce = announce
        self._clear_after = timedelta(seconds=clear_after)
        self._destination = destination
        self._gone_since: dict[str, datetime] = {}
        self.open: tuple[Incident, ...] = ()

    async def run_once(self) -> AlertPass:
        """Look once: open incidents for new findings, close those gone long enough."""
        now = self._clock.now()
        findings = {f.reason: f for f in await self._check() if f.reason in self._titles}
        current = {i.reason: i for i in await self._incidents.open_incidents()}
        opened = [
            Incident(
                reason=reason,
                title=self._titles[reason],
                detail=finding.message,
                started_at=finding.since or now,
            )
            for reason, finding in findings.items()
            if reason not in current
        ]
        closed = []
        for reason, incident in current.items():
            if reason in findings:
                self._gone_since.pop(reason, None)
                continue
            gone = self._gone_since.setdefault(reason, now)
            if now - gone >= self._clear_after:
                closed.append(incident)
        to = self._destination
        notifications = [
            alert_notification(self._started(i), now, to)
            for i in opened
            if self._announce(i.reason)
        ] + [
            alert_notification(self._ended(i, now), now, to)
            for i in closed
            if self._announce(i.reason)
        ]
        if opened or closed:
            await self._incidents.record(opened, [i.reason for i in closed], notifications)
            for incident in opened:
                log.warning("incident started: %s: %s", incident.reason, incident.detail)
            for incident in closed:
                self._gone_since.pop(incident.reason, None)
                log.info("incident ended: %s", incident.reason)
        gone_now = {i.reason for i in closed}
        self.open = tuple([i for r, i in current.items() if r not in gone_now] + opened)
        return AlertPass(tuple(opened), tuple(closed))

    async def follow(self) -> AlertPass:
        """Only read the open incidents: another monitor decides them (several receivers)."""
        self.open = tuple(await self._incidents.open_incidents())
        self._gone_since.clear()
        return AlertPass()

    @staticmethod
    def _started(incident: Incident) -> Alert:
        return Alert(
            reason=incident.reason,
            state=AlertState.STARTED,
            title=incident.title,
            detail=incident.detail,
            started_at=incident.started_at,
        )

    @staticmethod
    def _ended(incident: Incident, now: datetime) -> Alert:
        return Alert(
            reason=incident.reason,
            state=AlertState.ENDED,
            title=incident.title,
            detail=incident.detail,
            started_at=incident.started_at,
            ended_at=now,
        )
