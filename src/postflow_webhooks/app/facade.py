"""``FrameIOWebhookManager``: the seed's integration API, a thin facade over ``create_app``.

PostFlow keeps its code as the guide wrote it::

    webhook_manager = FrameIOWebhookManager(
        upload_tracker=upload_tracker, webhook_port=8080, use_cloudflare_tunnel=True
    )
    if webhook_manager.start_webhook_server():
        print(webhook_manager.get_public_webhook_url())

The receiver runs in a background thread with its own event loop; the calls
here return at once (``start_webhook_server`` waits for ``/health``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import uvicorn

from postflow_webhooks.adapters.frameio import FrameioConfigError
from postflow_webhooks.adapters.tracker import PostflowTracker, UploadTracker
from postflow_webhooks.app.composition import create_app
from postflow_webhooks.app.datadir import DataDirectoryError
from postflow_webhooks.app.runtime import ReceiverRuntime
from postflow_webhooks.app.server import PortInUseError, bind_socket, make_server
from postflow_webhooks.app.settings import Settings, SettingsError, load_settings
from postflow_webhooks.domain.endpoint import webhook_url
from postflow_webhooks.domain.errors import DomainError
from postflow_webhooks.domain.ports import FileDetails, Notifier, Tracker, Tunnel

log = logging.getLogger("postflow_webhooks.facade")


class FrameIOWebhookManager:
    """Start, inspect and stop the receiver from PostFlow's own process."""

    def __init__(
        self,
        upload_tracker: UploadTracker | None = None,
        webhook_port: int | None = None,
        use_cloudflare_tunnel: bool = True,
        *,
        host: str | None = None,
        data_dir: str | Path | None = None,
        webhook_secret: str | None = None,
        settings: Settings | None = None,
        environ: Mapping[str, str] | None = None,
        tracker: Tracker | None = None,
        notifier: Notifier | None = None,
        tunnel: Tunnel | None = None,
        file_details: FileDetails | None = None,
        start_timeout: float = 30.0,
    ) -> None:
        self.upload_tracker = upload_tracker
        self.webhook_port = webhook_port
        self.use_cloudflare_tunnel = use_cloudflare_tunnel
        self._flags: dict[str, Any] = {
            "port": webhook_port,
            "host": host,
            "data_dir": Path(data_dir) if data_dir is not None else None,
            "webhook_secret": webhook_secret,
        }
        self._settings = settings
        self._environ = environ if environ is not None else os.environ
        self._tracker = tracker
        self._notifier = notifier
        self._tunnel = tunnel
        self._file_details = file_details
        self._start_timeout = start_timeout
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._runtime: ReceiverRuntime | None = None
        self.last_error: str | None = None

    def _resolve_settings(self) -> Settings:
        if self._settings is not None:
            return self._settings
        settings = load_settings(self._environ, self._flags)
        if self.use_cloudflare_tunnel and settings.tunnel == "off":
            settings = load_settings(self._environ, {**self._flags, "tunnel": "quick"})
        if not self.use_cloudflare_tunnel:
            settings = load_settings(self._environ, {**self._flags, "tunnel": "off"})
        return settings

    @property
    def local_url(self) -> str:
        """The receiver's local base URL (port: the argument, else settings, else 8080)."""
        host = self._flags["host"] or "127.0.0.1"
        return f"http://{host}:{self.webhook_port or 8080}"

    def start_webhook_server(self) -> bool:
        """Start in the background; True once ``/readyz`` answers 200, else False with the reason logged."""
        if self._thread is not None and self._thread.is_alive():
            return True
        try:
            settings = self._resolve_settings()
            tracker = self._tracker
            if tracker is None and self.upload_tracker is not None:
                tracker = PostflowTracker(self.upload_tracker)
            app = create_app(
                settings,
                tracker=tracker,
                notifier=self._notifier,
                tunnel=self._tunnel,
                file_details=self._file_details,
            )
            runtime = app.state.runtime
            runtime.open()
        except (
            SettingsError,
            DataDirectoryError,
            PortInUseError,
            DomainError,
            FrameioConfigError,
        ) as exc:
            return self._fail(str(exc))
        self._runtime = runtime
        self.webhook_port = settings.port
        self._flags["host"] = settings.host
        try:
            sock = bind_socket(settings.host, settings.port)
        except PortInUseError as exc:
            asyncio.run(runtime.stop())
            return self._fail(str(exc))
        server = make_server(app, settings.host, settings.port)
        self._server = server

        def run() -> None:
            try:
                asyncio.run(server.serve(sockets=[sock]))
            finally:
                sock.close()

        self._thread = threading.Thread(target=run, name="postflow-webhooks", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + self._start_timeout
        while time.monotonic() < deadline:
            if not self._thread.is_alive():
                return self._fail("the receiver stopped during start-up (see the log above)")
            if server.started and self._ready():
                log.info("webhook receiver ready on %s", self.local_url)
                return True
            time.sleep(0.05)
        self.stop()
        return self._fail(f"the receiver was not ready (/readyz) within {self._start_timeout} s")

    def _fail(self, reason: str) -> bool:
        self.last_error = reason
        log.error("webhook receiver not started: %s", reason)
        return False

    def _ready(self) -> bool:
        # Ready, not healthy: a refused Frame.io sign-in or a tunnel still starting makes
        # /health 503 or degraded, yet deliveries are already accepted and applied.
        try:
            return httpx.get(f"{self.local_url}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def get_public_webhook_url(self) -> str | None:
        """The public URL to give Frame.io (``.../frameio-webhook``), or ``None`` without a tunnel."""
        runtime = self._runtime
        if runtime is None or runtime.tunnel is None:
            return None
        public = runtime.tunnel.info().public_url
        return webhook_url(public) if public else None

    def get_webhook_stats(self) -> dict[str, Any]:
        """The seed's stats: ``total_events``, ``events_by_type``, ``webhook_status``, ``tunnel_info``, ``last_event``."""
        try:
            answer = httpx.get(f"{self.local_url}/webhook-status", timeout=5)
            stats: dict[str, Any] = answer.json()
            return stats
        except (httpx.HTTPError, ValueError) as exc:
            return {
                "total_events": 0,
                "events_by_type": {},
                "webhook_status": "stopped",
                "tunnel_info": None,
                "last_event": None,
                "error": f"the receiver is not answering: {type(exc).__name__}",
            }

    def stop(self) -> None:
        """Stop the receiver: drain the backlog, stop the tunnel, close storage."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=60)
        self._server = None
        self._thread = None

    def __enter__(self) -> FrameIOWebhookManager:
        """Start on entry (check ``last_error`` if it did not)."""
        self.start_webhook_server()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop on exit."""
        self.stop()
