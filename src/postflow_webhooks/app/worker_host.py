"""The worker process itself: applies deliveries, sends notifications, reconciles.

``WorkerProcess`` (``worker_process.py``) starts ``main`` in a fresh
interpreter with the receiver's settings and two pipes. It builds its own
journal connection, store, Frame.io adapter, dispatcher and worker from the
same settings (``parts.py``), and stops, after finishing the pass in hand, on
end-of-file on the doorbell: the receiver stopped, or died.

Only one worker may apply a data directory's deliveries at a time, or a
delivery could be applied twice: a worker that outlives a killed receiver
finishes its pass while the restarted receiver's worker starts. The worker
therefore holds an exclusive lock on ``worker.lock`` in the data directory for
its whole life, and a new one waits for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import signal
import sys
from collections.abc import Coroutine
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from postflow_webhooks.adapters.clock import SystemClock
from postflow_webhooks.app.handoff import Doorbell
from postflow_webhooks.app.logs import configure_logging
from postflow_webhooks.app.parts import (
    build_dispatcher,
    build_frameio,
    build_journal,
    build_store,
    build_worker,
)
from postflow_webhooks.app.reconcile import reconcile_forever
from postflow_webhooks.app.settings import Settings
from postflow_webhooks.app.worker_process import REPORT_SECONDS
from postflow_webhooks.domain.errors import DomainError

log = logging.getLogger("postflow_webhooks.worker")

LOCK_NAME = "worker.lock"
LOCK_POLL_SECONDS = 0.1
WORKER_NICENESS = 19


def main(settings: Settings, doorbell: Connection, reports: Connection) -> None:
    """Run the worker until the receiver goes away; exit 1 if it cannot start."""
    # Ctrl-C, or a service manager's SIGTERM, reaches the whole process group. The
    # receiver decides when the worker stops: it drains its requests first, then
    # closes the doorbell. (SIGKILL still works, and the pass in hand rolls back.)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # When the machine is busy, the receiver's answers come first: Frame.io waits
    # for them (5 s), nobody waits on the worker by the millisecond. The lowest
    # priority still gets a share of a busy CPU (unlike SCHED_IDLE), so statuses
    # keep moving while, say, a transcode takes every core.
    os.nice(WORKER_NICENESS)
    configure_logging(settings.log_format, settings.log_level)
    try:
        _run_loop(_serve(settings, doorbell.fileno(), reports.fileno()))
    except _StartFailed:
        sys.exit(1)


def _run_loop(main: Coroutine[Any, Any, None]) -> None:
    """Run ``main`` on uvloop when installed (as uvicorn does), else on asyncio's loop."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
        return
    uvloop.run(main)


class _StartFailed(Exception):
    """The worker could not start; the receiver was told why."""


async def _serve(settings: Settings, bell: int, reports: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    doorbell = Doorbell()
    doorbell.bind()

    def on_bell() -> None:
        try:
            rung = os.read(bell, 4096)
        except BlockingIOError:
            return
        except OSError:
            rung = b""
        if rung:
            doorbell.ring()
        else:  # the receiver is gone
            loop.remove_reader(bell)
            stop.set()

    os.set_blocking(bell, False)
    loop.add_reader(bell, on_bell)
    lock = await _exclusive_lock(settings.data_dir / LOCK_NAME, reports, stop)
    if lock is None:
        return
    try:
        await _run_worker(settings, doorbell, reports, stop)
    finally:
        os.close(lock)


async def _run_worker(
    settings: Settings, doorbell: Doorbell, reports: int, stop: asyncio.Event
) -> None:
    clock = SystemClock()
    shared = settings.store == "sqlite"
    journal = build_journal(settings, on_commit=doorbell, owns_uploads=shared)
    store = build_store(settings)
    frameio = build_frameio(settings, clock)
    dispatcher = build_dispatcher(settings, journal, clock, None)
    worker = build_worker(
        settings,
        journal,
        store,
        clock,
        details=frameio.details if frameio else None,
        doorbell=doorbell,
        dispatcher=dispatcher,
    )
    try:
        journal.open()
        await worker.start()
        await dispatcher.start()
    except (DomainError, OSError) as exc:
        log.error("the worker could not start: %s", exc)
        _report(reports, {"fatal": str(exc)})
        raise _StartFailed from None
    tasks = []
    if frameio is not None:
        interval = settings.reconcile_interval
        tasks.append(asyncio.create_task(reconcile_forever(frameio, store, worker, interval)))

    def state() -> dict[str, Any]:
        return {
            "ready": True,
            "alive": worker.alive,
            "processed": worker.processed_total,
            "last_pass_at": worker.last_pass_at.isoformat() if worker.last_pass_at else None,
            "last_error": worker.last_error,
            "notifier": dispatcher.state(),
        }

    try:
        while not stop.is_set():
            if not _report(reports, state()):
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), REPORT_SECONDS)
    finally:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await worker.stop()
        await dispatcher.stop()
        if frameio is not None:
            await frameio.aclose()
        await journal.close()
        await store.close()
        log.info("worker process stopped")


async def _exclusive_lock(path: Path, reports: int, stop: asyncio.Event) -> int | None:
    """Hold ``path`` exclusively, waiting while another worker does; ``None`` if told to stop."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    waited = 0.0
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            pass
        if waited == 0.0:
            log.info("waiting for the previous worker process to finish (%s)", path)
        _report(
            reports,
            {"waiting": f"another worker holds {path} (is another receiver using this data?)"},
        )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), LOCK_POLL_SECONDS)
        waited += LOCK_POLL_SECONDS
        if stop.is_set():
            os.close(fd)
            return None


def _report(reports: int, state: dict[str, Any]) -> bool:
    """Send one report line; False once the receiver is gone."""
    line = json.dumps(state, default=str).encode("utf-8") + b"\n"
    try:
        os.write(reports, line)
    except (BrokenPipeError, OSError):
        return False
    return True
