"""The receiver watching itself: one snapshot for ``/health``, the page and ``/metrics``; alerts.

``Watcher.snapshot()`` reads what the database says (counters, backlog age,
deferred deliveries), checks now and then that the database can be written,
looks at the worker, the tunnel, the registrar, the Frame.io adapter and the
dispatchers, and turns it all into findings with the rules of ``health.py``.
While the receiver runs, the watcher also looks every ``alert_check_interval``
seconds for incidents to open or close (``service/alerts.py``) and asks Adobe
IMS every ``SIGNIN_INTERVAL`` seconds whether a token can be had (a cached
valid token costs no call). The dispatcher of the alerts channel (when alerts
have a Discord channel of their own) runs with the other dispatchers.

Opening and closing incidents is the ``alerts`` role (``lead``/``follow``): with
several receivers on one database, one of them at a time decides, from what it
sees and what the database says, and the others only read the open incidents,
so two never announce the same incident. A receiver that does not hold the
worker role does not count its idle worker as stopped, and one whose
dispatchers are idle reads each destination's broken mark from the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

import attrs

from postflow_webhooks.adapters.frameio.observed import FrameioObserver
from postflow_webhooks.adapters.http.metering import RequestCounts
from postflow_webhooks.adapters.prometheus import PrometheusMetrics
from postflow_webhooks.app.health import (
    ALERT_TITLES,
    DestinationView,
    FrameioView,
    Observations,
    RegistrationView,
    Thresholds,
    assess,
)
from postflow_webhooks.domain.errors import StorageError
from postflow_webhooks.domain.health import Finding, Verdict, verdict
from postflow_webhooks.domain.journal import JournalStats, StoreReading
from postflow_webhooks.domain.ports import IncidentLog
from postflow_webhooks.domain.records import DEFAULT_DESTINATION, UploadRecord
from postflow_webhooks.domain.statuses import PostflowStatus
from postflow_webhooks.service.alerts import AlertMonitor
from postflow_webhooks.service.dispatcher import NotificationDispatcher

if TYPE_CHECKING:
    from postflow_webhooks.app.runtime import ReceiverRuntime

log = logging.getLogger("postflow_webhooks.watch")

SIGNIN_INTERVAL = 60.0
WRITE_PROBE_INTERVAL = 2.0  # at most one probe write this often, and only when asked
WRITE_PROBE_STUCK = 2.0  # a probe write waiting longer than this means the store is stuck


class StoreWatch(Protocol):
    """The database reads behind the page, health and metrics (``SqliteWatch`` fits)."""

    async def reading(self, *, files: bool = True) -> StoreReading:
        """Backlog age, deferred deliveries, totals; files by status when ``files``."""
        ...

    async def browse(
        self,
        *,
        status: PostflowStatus | None = None,
        search: str | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> tuple[list[UploadRecord], int, int]:
        """A page of tracked files, how many match, and the revision they reflect."""
        ...

    async def check_writable(self, now: datetime) -> None:
        """Commit a tiny write; ``StorageError`` when it cannot."""
        ...


@attrs.frozen
class Snapshot:
    """The receiver at one moment: the database's figures and the findings."""

    at: datetime
    stats: JournalStats
    reading: StoreReading
    findings: tuple[Finding, ...]
    store_error: str | None = None
    readable: bool = True

    @property
    def verdict(self) -> Verdict:
        """ok, degraded or unhealthy."""
        return verdict(self.findings)


class Watcher:
    """Reads the receiver's state, keeps the incidents, runs the alerts channel."""

    def __init__(
        self,
        runtime: ReceiverRuntime,
        *,
        store: StoreWatch,
        incidents: IncidentLog,
        counts: RequestCounts,
        metrics: PrometheusMetrics,
        thresholds: Thresholds,
        observer: FrameioObserver | None = None,
        check_signin: Callable[[], Awaitable[None]] | None = None,
        alerts: NotificationDispatcher | None = None,
        announce_alerts: bool = False,
        alerts_separate: bool = False,
        check_interval: float = 15.0,
        resolve_after: float = 30.0,
        alerts_destination: str = DEFAULT_DESTINATION,
    ) -> None:
        self.runtime = runtime
        self.store = store
        self.counts = counts
        self.metrics = metrics
        self.thresholds = thresholds
        self.observer = observer
        self.alerts = alerts
        self.alerts_separate = alerts_separate
        self.url_changes = 0
        self._check_signin = check_signin
        self._announce_alerts = announce_alerts
        self._created_at = runtime.clock.now()
        self._tunnel_down_since: datetime | None = None
        self._probed_at: datetime | None = None
        self._probe_error: str | None = None
        self._probing: asyncio.Task[None] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._check_interval = check_interval
        self._leading = False
        self._looking = asyncio.Lock()
        self.monitor = AlertMonitor(
            self.findings,
            incidents,
            runtime.clock,
            titles=ALERT_TITLES,
            announce=self._announces,
            clear_after=resolve_after,
            destination=alerts_destination,
        )

    @property
    def announces_alerts(self) -> bool:
        """True when alerts are sent somewhere (their own channel, or the default one)."""
        return self._announce_alerts

    def _announces(self, reason: str) -> bool:
        if not self._announce_alerts:
            return False
        # A broken status channel cannot carry news of itself: only a channel of its own can.
        return reason != "discord_broken" or self.alerts_separate

    # -- reading ------------------------------------------------------------------
    async def snapshot(self, *, probe: bool = True, files: bool = True) -> Snapshot:
        """Read everything once and assess it.

        ``probe``: also check that the store takes writes; ``files``: also count
        the tracked files by status (what the page and ``/metrics`` show).
        """
        runtime = self.runtime
        now = runtime.clock.now()
        stats, reading, error = JournalStats(), StoreReading(), None
        try:
            stats = await runtime.counters.stats()
            reading = await self.store.reading(files=files)
            for dispatcher in self._idle_dispatchers():
                await dispatcher.refresh()
        except StorageError as exc:
            error = str(exc)
        readable = error is None
        if probe:
            error = error or self._probe(now)
        seen = self._observations(now, stats, reading, error)
        findings = tuple(assess(seen, self.thresholds))
        return Snapshot(now, stats, reading, findings, error, readable)

    def _idle_dispatchers(self) -> list[NotificationDispatcher]:
        """Dispatchers not running here (another receiver sends): their state is read, not kept."""
        runtime = self.runtime
        parts = list(runtime.dispatcher.all) if runtime.dispatcher is not None else []
        if self.alerts is not None:
            parts.append(self.alerts)
        return [part for part in parts if not part.running]

    async def findings(self) -> list[Finding]:
        """What is wrong now (the alert monitor's check)."""
        return list((await self.snapshot(probe=False, files=False)).findings)

    def _probe(self, now: datetime) -> str | None:
        """The last write probe's verdict; starts a new probe in the background when due.

        The probe never holds the answer up: a write still waiting after
        ``WRITE_PROBE_STUCK`` seconds (another program holding the write lock, a
        stalled disk) is itself the verdict.
        """
        running = self._probing is not None and not self._probing.done()
        started = self._probed_at
        if running and started is not None:
            waited = (now - started).total_seconds()
            if waited > WRITE_PROBE_STUCK:
                return f"the database has not accepted a write for {waited:.0f} s"
        elif started is None or (now - started).total_seconds() >= WRITE_PROBE_INTERVAL:
            self._probed_at = now
            self._probing = asyncio.create_task(self._write_probe(now), name="write-probe")
        return self._probe_error

    async def _write_probe(self, now: datetime) -> None:
        try:
            await self.store.check_writable(now)
            self._probe_error = None
        except StorageError as exc:
            self._probe_error = str(exc)

    def _observations(
        self, now: datetime, stats: JournalStats, reading: StoreReading, error: str | None
    ) -> Observations:
        runtime = self.runtime
        tunnel = runtime.tunnel.info() if runtime.tunnel is not None else None
        if tunnel is not None and not tunnel.ready:
            if self._tunnel_down_since is None:
                moved = tunnel.since if tunnel.state != "ready" else None
                self._tunnel_down_since = moved or min(now, self._created_at)
        else:
            self._tunnel_down_since = None
        registration = None
        status = runtime.registrar_status()
        if status is not None:
            registration = RegistrationView(
                pending=status.pending,
                wanted_url=status.wanted_url,
                registered_url=status.registered_url,
                last_error=status.last_error,
            )
        observer = self.observer
        frameio = None
        if observer is not None:
            frameio = FrameioView(
                signin=observer.signin.value,
                signin_detail=observer.signin_detail,
                signin_since=observer.signin_since,
                failing_since=observer.failing_since,
                last_error=observer.last_error,
            )
        tracker = runtime.tracker_sync
        return Observations(
            now=now,
            config_dir=str(runtime.settings.config_dir),
            store_error=error,
            commit_failure=runtime.storage.commit_failure(),
            # Another receiver holds the worker role: this one's idle worker is not a problem.
            worker_alive=runtime.worker.alive or not runtime.roles.holds("worker"),
            worker_error=runtime.worker.last_error,
            oldest_pending_at=reading.oldest_pending_at,
            deferred=reading.deferred,
            deferred_since=reading.oldest_deferred_at,
            deferred_reason=reading.deferred_reason,
            quarantined=stats.quarantined,
            dead_letters=stats.notifications_dead,
            tunnel=tunnel,
            tunnel_down_since=self._tunnel_down_since,
            registration=registration,
            frameio=frameio,
            discord=_broken(runtime.dispatcher.all if runtime.dispatcher is not None else None),
            alerts_destination=_broken((self.alerts,) if self.alerts is not None else None),
            tracker_error=tracker.last_error if tracker is not None else None,
            signatures_locked=runtime.secrets.locked,
        )

    # -- running ------------------------------------------------------------------
    async def start(self) -> None:
        """Count URL changes, look for incidents, check sign-in."""
        if self.runtime.tunnel is not None:
            self.runtime.tunnel.subscribe(self._url_changed)
        self._spawn(self._alerts_periodically(), "alert-monitor")
        if self._check_signin is not None:
            self._spawn(self._signin_periodically(self._check_signin), "frameio-signin")

    async def lead(self) -> None:
        """This receiver now opens and closes incidents (it holds the ``alerts`` role)."""
        self._leading = True

    async def follow(self) -> None:
        """Another receiver decides the incidents; wait for a look in progress to end."""
        self._leading = False
        async with self._looking:
            pass

    async def stop(self) -> None:
        """Stop looking for incidents and checking the sign-in."""
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        if self._probing is not None:
            self._probing.cancel()
            with contextlib.suppress(BaseException):
                await self._probing

    def _spawn(self, work: Awaitable[None], name: str) -> None:
        async def run() -> None:
            await work

        self._tasks.append(asyncio.create_task(run(), name=name))

    async def _alerts_periodically(self) -> None:
        while True:
            try:
                async with self._looking:
                    if self._leading:
                        result = await self.monitor.run_once()
                    else:
                        result = await self.monitor.follow()
            except Exception as exc:  # the database failed: /health says so; look again later
                log.warning("alert check failed: %s", exc)
            else:
                if result.opened or result.closed:
                    if self.runtime.dispatcher is not None:
                        self.runtime.dispatcher.wake()
                    if self.alerts is not None:
                        self.alerts.wake()
            await asyncio.sleep(self._check_interval)

    async def _url_changed(self, public_url: str) -> None:
        self.url_changes += 1

    async def _signin_periodically(self, check: Callable[[], Awaitable[None]]) -> None:
        while True:
            try:
                await check()
            except Exception as exc:  # observed by the adapter; never stop looking
                log.debug("sign-in check failed: %s", exc)
            await asyncio.sleep(SIGNIN_INTERVAL)


def _broken(dispatchers: Sequence[NotificationDispatcher] | None) -> DestinationView | None:
    """The first broken destination among ``dispatchers`` (a working one when none is)."""
    if dispatchers is None:
        return None
    for dispatcher in dispatchers:
        state = dispatcher.state()
        if state["destination_broken"]:
            since = state["broken_since"]
            return DestinationView(
                broken=True,
                reason=state["destination_reason"],
                since=datetime.fromisoformat(since) if since else None,
            )
    return DestinationView()
