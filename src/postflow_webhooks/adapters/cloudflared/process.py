"""One cloudflared child process: own session, output drained continuously, graceful stop.

The child runs in its own session (process group) so a terminal Ctrl-C reaches us,
not it; we then stop it ourselves: SIGTERM to the group, the grace period, SIGKILL.
On Linux the child also gets SIGTERM if we die without cleaning up (PDEATHSIG), and
an ``atexit`` hook kills any group still registered when the interpreter exits.
"""

from __future__ import annotations

import asyncio
import atexit
import collections
import contextlib
import ctypes
import os
import signal
import sys
from collections.abc import Callable, Mapping, Sequence

from postflow_webhooks.adapters.cloudflared.logfile import TunnelLog
from postflow_webhooks.adapters.cloudflared.output import Line, parse_line

_LIVE: set[int] = set()
_PR_SET_PDEATHSIG = 1
CHUNK = 65536


def _kill_leftovers() -> None:
    for pid in list(_LIVE):
        with contextlib.suppress(OSError):
            os.killpg(pid, signal.SIGKILL)


atexit.register(_kill_leftovers)


def _death_signal_hook() -> Callable[[], None] | None:
    """A pre-exec hook asking Linux to SIGTERM the child when its parent dies."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None

    def hook() -> None:
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)

    return hook


class CloudflaredProcess:
    """A spawned cloudflared whose stdout and stderr are read line by line until it exits."""

    def __init__(
        self,
        argv: Sequence[str],
        env: Mapping[str, str],
        *,
        on_line: Callable[[Line], None],
        log: TunnelLog,
    ) -> None:
        self.argv = list(argv)
        self._env = dict(env)
        self._on_line = on_line
        self._log = log
        self._proc: asyncio.subprocess.Process | None = None
        self._waiter: asyncio.Task[int] | None = None
        self._stopper: asyncio.Task[int] | None = None
        self.last_lines: collections.deque[str] = collections.deque(maxlen=20)

    @property
    def pid(self) -> int | None:
        """The child's pid once spawned."""
        return self._proc.pid if self._proc else None

    @property
    def returncode(self) -> int | None:
        """The exit code once reaped, else None."""
        return self._proc.returncode if self._proc else None

    async def spawn(self) -> None:
        """Start the child; raise ``OSError`` if the executable cannot be run."""
        self._proc = await asyncio.create_subprocess_exec(
            *self.argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=self._env,
            start_new_session=True,
            preexec_fn=_death_signal_hook(),
        )
        _LIVE.add(self._proc.pid)
        assert self._proc.stdout is not None and self._proc.stderr is not None
        drains = [
            asyncio.create_task(self._drain(self._proc.stdout)),
            asyncio.create_task(self._drain(self._proc.stderr)),
        ]
        self._waiter = asyncio.create_task(self._reap(self._proc, drains))

    async def _drain(self, stream: asyncio.StreamReader) -> None:
        pending = b""
        while True:
            chunk = await stream.read(CHUNK)
            if not chunk:
                break
            *lines, pending = (pending + chunk).split(b"\n")
            for raw in lines:
                self._handle(raw)
            self._log.flush()
        if pending:
            self._handle(pending)
            self._log.flush()

    def _handle(self, raw: bytes) -> None:
        text = raw.decode("utf-8", "replace").rstrip("\r")
        self._log.write_line(text)
        if text.strip():
            self.last_lines.append(text)
        self._on_line(parse_line(text))

    async def _reap(
        self, proc: asyncio.subprocess.Process, drains: list[asyncio.Task[None]]
    ) -> int:
        try:
            code = await proc.wait()
        finally:
            _LIVE.discard(proc.pid)
        # The pipes close when the group is gone; bound the wait in case a grandchild kept them.
        _, late = await asyncio.wait(drains, timeout=5.0)
        for task in late:
            task.cancel()
        return code

    async def wait(self) -> int:
        """Wait for the exit (and the last output line); cancelling the caller does not reap."""
        assert self._waiter is not None, "spawn() first"
        return await asyncio.shield(self._waiter)

    def _signal_group(self, sig: signal.Signals) -> None:
        if self._proc is None or self._proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._proc.pid, sig)

    async def stop(self, grace: float) -> int:
        """SIGTERM the group, wait ``grace`` seconds, then SIGKILL; always reaps the child."""
        if self._stopper is None:
            self._stopper = asyncio.create_task(self._stop(grace))
        return await asyncio.shield(self._stopper)

    async def _stop(self, grace: float) -> int:
        assert self._waiter is not None
        if not self._waiter.done():
            self._signal_group(signal.SIGTERM)
            done, _ = await asyncio.wait({self._waiter}, timeout=grace)
            if not done:
                self._log.lifecycle(f"cloudflared ignored SIGTERM for {grace:g}s; sending SIGKILL")
                self._signal_group(signal.SIGKILL)
        return await self._waiter
