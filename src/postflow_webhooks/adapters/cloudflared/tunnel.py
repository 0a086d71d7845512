"""``CloudflaredTunnel``: the ``Tunnel`` port over a supervised cloudflared process.

One attempt = spawn, wait until ready (a registered edge connection, by the
``Registered tunnel connection`` line or ``/ready`` 200, within ``ready_timeout``),
read the URL (``/quicktunnel``, else the banner's box row), publish it if new,
then wait for the exit. Attempts run under the injected tenacity policy. A dropped
edge connection inside a live process only flips ``ready``: no restart, same URL.
"""

from __future__ import annotations

import asyncio
import functools
import os
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

import attrs
import tenacity

from postflow_webhooks.adapters.clock import SystemClock
from postflow_webhooks.adapters.cloudflared.attempt import Attempt
from postflow_webhooks.adapters.cloudflared.command import (
    build_argv,
    build_env,
    metrics_port,
    resolve_executable,
)
from postflow_webhooks.adapters.cloudflared.config import CloudflaredConfig
from postflow_webhooks.adapters.cloudflared.errors import (
    CloudflaredError,
    CloudflaredNotInstalledError,
    CloudflaredTooOldError,
    TunnelNeverReadyError,
)
from postflow_webhooks.adapters.cloudflared.logfile import TunnelLog
from postflow_webhooks.adapters.cloudflared.metrics import MetricsClient
from postflow_webhooks.adapters.cloudflared.output import Kind, Line
from postflow_webhooks.adapters.cloudflared.process import CloudflaredProcess
from postflow_webhooks.adapters.cloudflared.supervisor import restart_retrying
from postflow_webhooks.domain.ports import Clock, TunnelInfo, UrlListener

if TYPE_CHECKING:
    from postflow_webhooks.domain.ports import Tunnel

MINIMUM_VERSION = "2024.1.0"
POLL_INTERVAL = 0.1
DROPPED = "edge connection dropped; cloudflared is reconnecting (not a restart)"


class _StableRunEnded(Exception):
    """A process that had been ready for ``stable_after`` exited: restart with fresh backoff."""


class CloudflaredTunnel:
    """A quick or named Cloudflare tunnel to the receiver's port, restarted when it dies."""

    def __init__(
        self,
        config: CloudflaredConfig,
        *,
        retrying: tenacity.AsyncRetrying | None = None,
        clock: Clock | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.config = config
        self._retrying = retrying or restart_retrying(config.restart)
        self._clock: Clock = clock or SystemClock()
        self._environ = environ
        self._log = TunnelLog(
            config.log_file, max_bytes=config.log_max_bytes, backups=config.log_backups
        )
        self._listeners: list[UrlListener] = []
        self._info = TunnelInfo(mode=config.mode, state="off")
        self._proc: CloudflaredProcess | None = None
        self._task: asyncio.Task[None] | None = None
        self._first: asyncio.Future[None] | None = None
        self._stopping = False
        self._launches = 0

    # -- the port ---------------------------------------------------------------
    def info(self) -> TunnelInfo:
        """Mode, state, public URL, readiness, restarts, last error and since when."""
        return self._info

    def subscribe(self, listener: UrlListener) -> None:
        """Call ``listener`` with every new public URL (the first one included)."""
        self._listeners.append(listener)

    @property
    def pid(self) -> int | None:
        """The current cloudflared's pid, if one runs."""
        return self._proc.pid if self._proc and self._proc.returncode is None else None

    async def start(self) -> None:
        """Start supervising; return once a process is ready, or raise its ``TunnelError``."""
        if self._task is not None:
            raise RuntimeError("CloudflaredTunnel.start() called twice")
        self._stopping = False
        self._first = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._supervise(), name="cloudflared-supervisor")
        try:
            await asyncio.shield(self._first)
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Stop cloudflared gracefully (SIGTERM, grace, SIGKILL); no process is left behind."""
        self._stopping = True
        proc = self._proc
        if proc is not None and proc.returncode is None:
            self._log.lifecycle(f"stopping cloudflared pid={proc.pid}")
            await proc.stop(self.config.grace_period + self.config.kill_margin)
        task, self._task = self._task, None
        if task is not None:
            if not task.done():
                task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if self._info.state not in ("off", "failed"):
            self._set(state="stopped", ready=False)
            self._log.lifecycle("tunnel stopped")
        self._log.close()

    # -- supervision ------------------------------------------------------------
    def _set(self, **changes: object) -> None:
        state_changed = "state" in changes and changes["state"] != self._info.state
        if state_changed:
            changes["since"] = self._clock.now()
        self._info = attrs.evolve(self._info, **changes)  # type: ignore[arg-type]

    async def _supervise(self) -> None:
        try:
            while not self._stopping:
                try:
                    async for attempt in self._retrying:
                        with attempt:
                            await self._run_once()
                    return
                except _StableRunEnded:
                    continue
                except tenacity.RetryError as exc:  # an injected policy without reraise
                    error = exc.last_attempt.exception()
                    raise error if error is not None else exc from None
        except CloudflaredError as exc:
            self._set(state="failed", ready=False, last_error=str(exc))
            self._log.lifecycle(f"tunnel failed: {exc}")
            if self._first is not None and not self._first.done():
                self._first.set_exception(exc)
        except BaseException as exc:
            if self._first is not None and not self._first.done():
                if isinstance(exc, asyncio.CancelledError):
                    self._first.cancel()  # stopped before ready: nobody is left to tell
                else:
                    self._first.set_exception(exc)
            raise

    async def _run_once(self) -> None:
        if self._stopping:  # stop() won the race against a restart
            return
        config = self.config
        attempt = Attempt()
        executable = resolve_executable(config.executable)
        port = metrics_port(config)
        argv = build_argv(config, executable, port)
        env = build_env(config, self._environ if self._environ is not None else os.environ)
        proc = CloudflaredProcess(
            argv, env, on_line=functools.partial(self._on_line, attempt), log=self._log
        )
        self._launches += 1
        state = "restarting" if self._launches > 1 else "starting"
        self._set(state=state, ready=False, restarts=self._launches - 1)
        try:
            await proc.spawn()
        except OSError as exc:
            raise CloudflaredNotInstalledError(f"{executable} ({exc.strerror})") from exc
        self._proc = proc
        self._log.lifecycle(f"started cloudflared pid={proc.pid}: {' '.join(argv)}")
        metrics = MetricsClient(config.metrics_host, port)
        try:
            if not await self._wait_ready(proc, metrics, attempt):
                raise self._exit_error(attempt, await proc.wait(), proc, port)
            url = await self._public_url(metrics, attempt)
            ready_at = time.monotonic()
            self._set(state="ready", ready=True)
            self._log.lifecycle(f"tunnel ready: {url or '(named tunnel, no hostname set)'}")
            if url is not None and url != self._info.public_url:
                await self._publish(url)
            if self._first is not None and not self._first.done():
                self._first.set_result(None)
            code = await proc.wait()
            if self._stopping:
                return
            error = self._exit_error(attempt, code, proc, port)
            self._set(state="restarting", ready=False, last_error=str(error))
            self._log.lifecycle(f"cloudflared exited unexpectedly: {error}")
            if time.monotonic() - ready_at >= config.restart.stable_after:
                raise _StableRunEnded() from error
            raise error
        except CloudflaredError as exc:
            if not self._stopping:
                self._set(last_error=str(exc))
                self._log.lifecycle(f"attempt failed: {exc}")
            raise
        finally:
            await metrics.aclose()
            if proc.returncode is None:
                await proc.stop(config.grace_period + config.kill_margin)

    async def _wait_ready(
        self, proc: CloudflaredProcess, metrics: MetricsClient, attempt: Attempt
    ) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.ready_timeout
        exited = asyncio.ensure_future(proc.wait())
        registered = asyncio.ensure_future(attempt.registered.wait())
        try:
            while True:
                if attempt.registered.is_set():
                    return True
                if exited.done():
                    return False
                if await metrics.ready():
                    return True
                remaining = deadline - loop.time()
                if remaining <= 0:
                    self._log.lifecycle("cloudflared never became ready; stopping it")
                    raise TunnelNeverReadyError(
                        self.config.ready_timeout, self.config.protocol, attempt.edge_error
                    )
                await asyncio.wait(
                    {exited, registered},
                    timeout=min(POLL_INTERVAL, remaining),
                    return_when=asyncio.FIRST_COMPLETED,
                )
        finally:
            registered.cancel()
            exited.cancel()

    async def _public_url(self, metrics: MetricsClient, attempt: Attempt) -> str | None:
        if self.config.mode == "named":
            return self.config.named_url
        answer = None
        for _ in range(20):
            answer = await metrics.quicktunnel()
            if answer is not None:
                break
            await asyncio.sleep(POLL_INTERVAL)
        if answer is not None and answer.hostname:
            return f"https://{answer.hostname}"
        if answer is not None and answer.missing:
            self._log.lifecycle(
                f"/quicktunnel is missing (cloudflared {attempt.version or '?'} is older than "
                f"{MINIMUM_VERSION}); using the banner's URL"
            )
            if attempt.box_url is None:
                raise CloudflaredTooOldError(attempt.version, MINIMUM_VERSION)
        if attempt.box_url is None:
            raise CloudflaredError("cloudflared is ready but reported no public hostname")
        return attempt.box_url

    async def _publish(self, url: str) -> None:
        self._set(public_url=url)
        self._log.lifecycle(f"new public URL {url}")
        for listener in list(self._listeners):
            try:
                await listener(url)
            except Exception as exc:
                self._log.lifecycle(f"a URL listener failed: {exc!r}")

    def _exit_error(
        self, att: Attempt, code: int, proc: CloudflaredProcess, port: int
    ) -> Exception:
        address, named = f"{self.config.metrics_host}:{port}", self.config.mode == "named"
        return att.exit_error(
            code, named=named, metrics_address=address, last_lines=proc.last_lines
        )

    def _on_line(self, attempt: Attempt, line: Line) -> None:
        attempt.observe(line)
        if line.kind is Kind.REGISTERED and self._info.state == "reconnecting":
            self._set(state="ready", ready=True)
            self._log.lifecycle("edge connection registered again; same public URL")
        elif line.kind in (Kind.EDGE_FAILURE, Kind.RETRYING) and self._info.state == "ready":
            if self._stopping:
                return
            self._set(state="reconnecting", ready=False, last_error=DROPPED)
            self._log.lifecycle("edge connection dropped; waiting for cloudflared to retry")


if TYPE_CHECKING:

    def _fits_the_port(tunnel: CloudflaredTunnel) -> Tunnel:
        """mypy proves here that ``CloudflaredTunnel`` fits the ``Tunnel`` port."""
        return tunnel
