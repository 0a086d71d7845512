"""The worker in a process of its own, seen from the receiver.

With one process, the HTTP path and the worker share one interpreter lock, so
every delivery applied is a delivery not accepted. In its own process the
worker runs on the second core and the receiver only verifies, commits and
answers. The two meet in the SQLite journal, as before; two pipes join them:

* the doorbell (receiver to worker): a byte after each commit of deliveries,
  so the worker starts at once rather than at its next poll. When the
  receiver goes away, even by ``kill -9``, the worker reads end-of-file,
  finishes its pass and exits;
* reports (worker to receiver): a JSON line every ``REPORT_SECONDS`` with what
  ``/health`` and ``/webhook-status`` show of the worker and the notifier.

``WorkerProcess`` starts the process, waits until it reports ready, restarts it
with backoff if it dies or stops reporting (stuck), and stops it cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import multiprocessing
import os
import time
from collections.abc import Callable
from datetime import datetime
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from postflow_webhooks.app.settings import Settings
from postflow_webhooks.domain.errors import StorageError

log = logging.getLogger("postflow_webhooks.worker")

REPORT_SECONDS = 0.25
# A worker silent this long is shown as not running.
STALE_SECONDS = 5.0
START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0
MAX_RESTART_WAIT = 30.0
# A worker silent this long is stuck (its loop reports every REPORT_SECONDS
# whatever the pass in hand): it is killed and restarted.
HUNG_SECONDS = 60.0
HANG_CHECK_SECONDS = 1.0

WorkerMain = Callable[[Settings, Connection, Connection], None]


class WorkerProcess:
    """Runs ``target(settings, doorbell, reports)`` in a child process and watches it."""

    def __init__(self, settings: Settings, target: WorkerMain) -> None:
        self._settings = settings
        self._target = target
        self._process: BaseProcess | None = None
        self._bell: Connection | None = None
        self._reports: Connection | None = None
        self._buffer = b""
        self._report: dict[str, Any] = {}
        self._reported_at = float("-inf")
        self._changed = asyncio.Event()
        self._supervisor: asyncio.Task[None] | None = None
        self._stopping = False
        self._exit_note: str | None = None
        self.restarts = 0

    # -- what the receiver shows ---------------------------------------------

    @property
    def alive(self) -> bool:
        """True while the process runs and its last report is recent and says so."""
        process = self._process
        fresh = _now() - self._reported_at < STALE_SECONDS
        return (
            process is not None
            and process.is_alive()
            and fresh
            and self._report.get("alive") is True
        )

    @property
    def processed_total(self) -> int:
        """Deliveries the current worker process has processed."""
        return int(self._report.get("processed", 0))

    @property
    def last_pass_at(self) -> datetime | None:
        """When the worker last looked for work."""
        value = self._report.get("last_pass_at")
        return datetime.fromisoformat(value) if value else None

    @property
    def last_error(self) -> str | None:
        """The worker's last failed pass, as reported (why a process died is logged)."""
        error = self._report.get("last_error")
        return str(error) if error else None

    def notifier_state(self) -> dict[str, Any]:
        """The notifier's figures as last reported."""
        state = self._report.get("notifier")
        return dict(state) if isinstance(state, dict) else {"destination": "unknown"}

    @property
    def pid(self) -> int | None:
        """The worker process's id, while it runs."""
        return self._process.pid if self._process is not None else None

    # -- the doorbell --------------------------------------------------------

    def ring(self) -> None:
        """Tell the worker deliveries were committed (never blocks; a full pipe is enough)."""
        bell = self._bell
        if bell is None:
            return
        with contextlib.suppress(BlockingIOError, BrokenPipeError, OSError):
            os.write(bell.fileno(), b"\x01")

    # -- life ----------------------------------------------------------------

    async def start(self) -> None:
        """Start the process and wait until it reports ready; ``StorageError`` if it cannot."""
        self._stopping = False
        await self._spawn()
        self._supervisor = asyncio.create_task(self._supervise(), name="worker-supervisor")

    async def stop(self) -> None:
        """Ask the process to finish (end-of-file on the doorbell) and wait; kill if it hangs."""
        self._stopping = True
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
            self._supervisor = None
        process = self._process
        self._close_pipes(keep_reports=True)
        if process is not None:
            try:
                await asyncio.wait_for(_exit_of(process), STOP_TIMEOUT)
            except TimeoutError:
                log.error("the worker process did not stop within %.0f s; killing it", STOP_TIMEOUT)
                process.kill()
            await asyncio.get_running_loop().run_in_executor(None, process.join, 5)
        self._close_pipes()
        self._process = None

    async def _spawn(self) -> None:
        context = multiprocessing.get_context("spawn")
        bell_in, bell_out = context.Pipe(duplex=False)
        reports_in, reports_out = context.Pipe(duplex=False)
        process = context.Process(
            target=self._target,
            args=(self._settings, bell_in, reports_out),
            name="postflow-webhooks-worker",
        )
        process.start()
        bell_in.close()
        reports_out.close()
        os.set_blocking(bell_out.fileno(), False)
        self._process, self._bell, self._reports = process, bell_out, reports_in
        self._buffer, self._report, self._reported_at = b"", {}, float("-inf")
        loop = asyncio.get_running_loop()
        loop.add_reader(reports_in.fileno(), self._read_reports)
        try:
            await self._until_ready(process)
        except BaseException:
            self._exit_note = self._report.get("fatal") or self._exit_note
            if process.is_alive():
                process.kill()
            await loop.run_in_executor(None, process.join, 5)
            self._close_pipes()
            raise
        self._exit_note = None
        log.info("worker process %s started", process.pid)

    async def _until_ready(self, process: BaseProcess) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + START_TIMEOUT
        while not self._report.get("ready"):
            if self._report.get("fatal"):
                raise StorageError(f"the worker process could not start: {self._report['fatal']}")
            if not process.is_alive():
                raise StorageError(
                    f"the worker process exited during start-up (exit code {process.exitcode}); "
                    "its error is in the log above"
                )
            if loop.time() > deadline:
                waiting = self._report.get("waiting")
                raise StorageError(
                    f"the worker process was not ready within {START_TIMEOUT:.0f} s"
                    + (f": {waiting}" if waiting else "")
                )
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), 0.05)

    async def _supervise(self) -> None:
        """Restart the process, with growing waits, whenever it dies."""
        loop = asyncio.get_running_loop()
        failures = 0
        while not self._stopping:
            process = self._process
            if process is not None:
                hung = await self._until_exit_or_hung(process)
                if self._stopping:
                    return
                await loop.run_in_executor(None, process.join, 5)
                self._exit_note = (
                    f"the worker process sent no report for {HUNG_SECONDS:.0f} s and was killed"
                    if hung
                    else f"the worker process exited (exit code {process.exitcode})"
                )
                self._close_pipes()
            failures += 1
            wait = min(MAX_RESTART_WAIT, 2.0 ** min(failures - 1, 16))
            log.error("%s; restarting it in %.0f s", self._exit_note, wait)
            await asyncio.sleep(wait)
            try:
                await self._spawn()
            except StorageError as exc:
                self._process = None
                self._exit_note = str(exc)
                continue
            self.restarts += 1
            failures = 0

    async def _until_exit_or_hung(self, process: BaseProcess) -> bool:
        """Wait for ``process`` to exit; kill it if its reports stop. True if it was killed."""
        while True:
            try:
                await asyncio.wait_for(_exit_of(process), HANG_CHECK_SECONDS)
            except TimeoutError:
                if self._stopping or _now() - self._reported_at <= HUNG_SECONDS:
                    continue
                log.error(
                    "the worker process %s sent no report for %.0f s; killing it",
                    process.pid,
                    HUNG_SECONDS,
                )
                process.kill()
                await _exit_of(process)
                return True
            return False

    def _read_reports(self) -> None:
        reports = self._reports
        if reports is None:
            return
        try:
            data = os.read(reports.fileno(), 65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            asyncio.get_running_loop().remove_reader(reports.fileno())
            return
        self._buffer += data
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            with contextlib.suppress(ValueError):
                report = json.loads(line)
                if isinstance(report, dict):
                    self._report = report
                    self._reported_at = _now()
        self._changed.set()

    def _close_pipes(self, *, keep_reports: bool = False) -> None:
        if self._bell is not None:
            self._bell.close()
            self._bell = None
        if keep_reports or self._reports is None:
            return
        with contextlib.suppress(ValueError, RuntimeError):
            asyncio.get_running_loop().remove_reader(self._reports.fileno())
        self._reports.close()
        self._reports = None


class ReportedNotifier:
    """The notifier's state as the worker process reports it (``Service`` for the runtime)."""

    def __init__(self, worker: WorkerProcess) -> None:
        self._worker = worker

    async def start(self) -> None:
        """Nothing to start here: the notifier runs in the worker process."""

    async def stop(self) -> None:
        """Nothing to stop here: the worker process stops its notifier."""

    def state(self) -> dict[str, Any]:
        """What ``/health`` and ``/webhook-status`` show of the notifier."""
        return self._worker.notifier_state()


async def _exit_of(process: BaseProcess) -> None:
    """Return once ``process`` has exited (its sentinel is readable); reaping is the caller's."""
    loop = asyncio.get_running_loop()
    exited: asyncio.Future[None] = loop.create_future()
    sentinel = process.sentinel

    def on_exit() -> None:
        if not exited.done():
            exited.set_result(None)

    loop.add_reader(sentinel, on_exit)
    try:
        await exited
    finally:
        loop.remove_reader(sentinel)


def _now() -> float:
    return time.monotonic()
