"""``FrameIOWebhookManager``: PostFlow 4.3's webhook manager, a thin facade over ``create_app``.

PostFlow's ``WebhookService`` drives it with only its import line changed::

    manager = FrameIOWebhookManager(upload_tracker=tracker, webhook_port=8080,
                                    frameio_auth=auth)
    if manager.start_webhook_server():
        print(manager.get_public_webhook_url())

The receiver runs on a thread of its own with its own event loop: the same
app, the same single process and the same database as ``serve``. The calls
here are synchronous and return when what they say is done.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import os
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from postflow_webhooks.adapters.frameio import FrameioConfigError
from postflow_webhooks.adapters.http.signature import SignatureError, verify
from postflow_webhooks.adapters.tracker import PostflowTracker, UploadTracker
from postflow_webhooks.app.composition import create_app
from postflow_webhooks.app.datadir import DataDirectoryError
from postflow_webhooks.app.facade.frameio import FacadeFrameio
from postflow_webhooks.app.facade.loop import LoopThread
from postflow_webhooks.app.facade.tunnel import PostflowTunnelManager
from postflow_webhooks.app.facade.wording import (
    auth_problem,
    facade_wording,
    named_tunnel_problem,
    tracker_problem,
)
from postflow_webhooks.app.presenters import present_comments, present_tunnel
from postflow_webhooks.app.runtime import ReceiverRuntime
from postflow_webhooks.app.server import (
    PortInUseError,
    bind_socket,
    connection_limits,
    make_server,
)
from postflow_webhooks.app.settings import Settings, SettingsError, load_settings
from postflow_webhooks.app.status import RuntimeStatusViews
from postflow_webhooks.domain.endpoint import WEBHOOK_PATH, webhook_url
from postflow_webhooks.domain.errors import DomainError, NotJsonError, PayloadError
from postflow_webhooks.domain.ports import FileDetails, Notifier, Tracker, Tunnel, TunnelInfo

log = logging.getLogger("postflow_webhooks.facade")

TRACKER_METHODS = (
    "get_upload",
    "update_upload",
    "mark_processing",
    "mark_completed",
    "update_status",
)
POLL_SECONDS = 0.05

# Set on the relay thread while PostFlow's own wrapper is shown an HTTP delivery.
_relaying = threading.local()


class WebhookData(dict[str, Any]):
    """PostFlow's ``webhook_data`` dict; its repr never shows the signing secret."""

    def __repr__(self) -> str:
        shown = {k: ("<set>" if k == "signing_secret" and v else v) for k, v in self.items()}
        return repr(shown)


class FrameIOWebhookManager:
    """Start, watch and stop the receiver from PostFlow's own process."""

    def __init__(
        self,
        upload_tracker: UploadTracker | None = None,
        webhook_port: int | None = None,
        webhook_path: str = WEBHOOK_PATH,
        use_cloudflare_tunnel: bool = True,
        frameio_auth: Any = None,
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
        tunnel_timeout: float = 60.0,
    ) -> None:
        self.upload_tracker = upload_tracker
        self.webhook_port = webhook_port
        self.webhook_path = webhook_path
        self.use_cloudflare_tunnel = use_cloudflare_tunnel
        self.frameio_auth = frameio_auth
        self.webhook_url: str | None = None
        self.webhook_data = WebhookData(
            webhook_id=None, events=[], status="inactive", tunnel_info=None, signing_secret=None
        )
        self.tunnel_manager = PostflowTunnelManager(self) if use_cloudflare_tunnel else None
        self.last_error: str | None = None
        self._flags: dict[str, Any] = {
            "port": webhook_port,
            "host": host,
            "data_dir": Path(data_dir) if data_dir is not None else None,
            "webhook_secret": webhook_secret,
        }
        self._settings = settings
        self._environ = environ if environ is not None else os.environ
        self._parts: dict[str, Any] = {
            "tracker": tracker,
            "notifier": notifier,
            "tunnel": tunnel,
            "file_details": file_details,
        }
        self._start_timeout = start_timeout
        self._tunnel_timeout = tunnel_timeout
        self._loop: LoopThread | None = None
        self._server: Any = None
        self._serving: concurrent.futures.Future[None] | None = None
        self._runtime: ReceiverRuntime | None = None
        self._receiver: Any = None
        self._postflow_tracker: PostflowTracker | None = None
        self._relay_pool: concurrent.futures.ThreadPoolExecutor | None = None
        self.frameio = FacadeFrameio(self)

    # -- starting and stopping -------------------------------------------------

    @property
    def running(self) -> bool:
        """True while the receiver serves."""
        return self._serving is not None and not self._serving.done()

    @property
    def runtime(self) -> ReceiverRuntime | None:
        """The running receiver's parts, while it runs."""
        return self._runtime

    @property
    def loop(self) -> LoopThread | None:
        """The receiver's event loop thread, while it runs."""
        return self._loop

    def start_webhook_server(self, *, tunnel_timeout: float | None = None) -> bool:
        """Start the receiver (and its tunnel); True once it serves and has its public URL.

        False, with the reason in ``last_error``, when it cannot start. With the
        tunnel on, the public URL is known when this returns True; it waits up to
        ``tunnel_timeout`` seconds (the constructor's, 60 by default) for it.
        """
        if self.running:
            return True
        self.last_error = None
        try:
            runtime, app, sock = self._prepare()
        except _Refused as refused:
            return self._fail(str(refused))
        self._runtime, self._receiver = runtime, app.state.receiver
        self._receiver.on_accepted = self._relay
        if runtime.tunnel is not None:
            runtime.tunnel.subscribe(self._on_public_url)
        self._relay_pool = concurrent.futures.ThreadPoolExecutor(1, "postflow-webhooks-relay")
        self._loop = LoopThread("postflow-webhooks")
        self._loop.start()
        host, port = sock.getsockname()[:2]
        limits = connection_limits(runtime.settings)
        self._server = server = make_server(app, host, port, limits)

        async def serve() -> None:
            try:
                await server.serve(sockets=[sock])
            except SystemExit:  # uvicorn exits the process when start-up fails; not here
                raise RuntimeError("the receiver stopped during start-up") from None
            finally:
                sock.close()

        self._serving = self._loop.spawn(serve())
        if not self._wait(lambda: server.started, self._start_timeout):
            reason = runtime.start_error or "the receiver stopped during start-up"
            if self.running:
                reason = f"the receiver did not start within {self._start_timeout:g} s"
            self.stop()
            return self._fail(reason)
        if runtime.tunnel is not None:
            wait = self._tunnel_timeout if tunnel_timeout is None else tunnel_timeout
            if not self._wait(lambda: self.webhook_url is not None, wait, runtime.tunnel):
                info = runtime.tunnel.info()
                self.stop()
                return self._fail(
                    f"the Cloudflare tunnel gave no public URL within {wait:g} s "
                    f"({info.last_error or info.state}); see logs/webhook_tunnel.log, pass a "
                    "longer tunnel_timeout=, or use_cloudflare_tunnel=False to stay local"
                )
        self.webhook_data["status"] = "active"
        log.info("webhook receiver ready on %s", self.local_url)
        return True

    def _prepare(self) -> tuple[ReceiverRuntime, Any, Any]:
        """Settings, app, data directory and port, or ``_Refused`` with the facade's fix."""
        problem = tracker_problem(self.upload_tracker) or auth_problem(self.frameio_auth)
        if problem is not None:
            raise _Refused(problem)
        if self.webhook_path.rstrip("/") != WEBHOOK_PATH:
            raise _Refused(f"webhook_path must be {WEBHOOK_PATH!r}, got {self.webhook_path!r}")
        runtime = None
        try:
            settings = self.resolve_settings()
            problem = named_tunnel_problem(settings)
            if problem is not None:
                raise _Refused(problem)
            tracker = self._parts["tracker"]
            if tracker is None and self.upload_tracker is not None:
                tracker = self._postflow_tracker = PostflowTracker(self.upload_tracker)
            app = create_app(
                settings,
                tracker=tracker,
                notifier=self._parts["notifier"],
                tunnel=self._parts["tunnel"],
                file_details=self._parts["file_details"],
                frameio_auth=self.frameio_auth,
            )
            runtime = app.state.runtime
            runtime.open()
            sock = bind_socket(settings.host, settings.port)
        except (SettingsError, DataDirectoryError, PortInUseError, DomainError) as exc:
            self._abandon(runtime)
            raise _Refused(facade_wording(exc)) from None
        except (FrameioConfigError, ValueError) as exc:
            self._abandon(runtime)
            raise _Refused(str(exc)) from None
        self.webhook_port = settings.port
        self._flags["host"] = settings.host
        return runtime, app, sock

    def _abandon(self, runtime: ReceiverRuntime | None) -> None:
        if runtime is not None and runtime.opened:
            asyncio.run(runtime.stop())
        self._close_tracker()

    def _wait(self, done: Any, timeout: float, tunnel: Tunnel | None = None) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if done():
                return True
            if not self.running:
                return False
            if tunnel is not None and tunnel.info().state == "failed":
                return False
            time.sleep(POLL_SECONDS)
        return bool(done())

    def stop(self) -> None:
        """Stop the receiver: apply the backlog, stop the tunnel, close storage; idempotent.

        Returns once the port is free and no thread or child process of ours is left.
        """
        self.frameio.close()
        server, serving, loop = self._server, self._serving, self._loop
        self._server = self._serving = self._loop = None
        if server is not None:
            server.should_exit = True
        if serving is not None:
            try:
                serving.result(timeout=60)
            except Exception as exc:  # already logged by uvicorn; stopping anyway
                log.debug("the receiver ended with %r", exc)
        if loop is not None:
            loop.stop()
        if self._relay_pool is not None:
            self._relay_pool.shutdown(wait=True)
            self._relay_pool = None
        self._close_tracker()
        self._runtime = self._receiver = None
        self.webhook_url = None
        self.webhook_data.update(status="inactive", tunnel_info=None)

    def stop_webhook_server(self) -> None:
        """PostFlow's name for ``stop``."""
        self.stop()

    def _close_tracker(self) -> None:
        tracker, self._postflow_tracker = self._postflow_tracker, None
        if tracker is not None:
            asyncio.run(tracker.close())

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

    # -- what PostFlow reads ---------------------------------------------------

    @property
    def local_url(self) -> str:
        """The receiver's local base URL."""
        host = self._flags["host"] or "127.0.0.1"
        return f"http://{host}:{self.webhook_port or 8080}"

    def get_public_webhook_url(self, timeout: float | None = None) -> str | None:
        """The URL to give Frame.io (``.../frameio-webhook``); waits up to ``timeout`` for it."""
        if timeout:
            self._wait(lambda: self.webhook_url is not None, timeout)
        return webhook_url(self.webhook_url) if self.webhook_url else None

    def tunnel_info(self) -> TunnelInfo | None:
        """The tunnel's state now, while the receiver runs with one."""
        runtime = self._runtime
        if runtime is None or runtime.tunnel is None:
            return None
        return runtime.tunnel.info()

    def get_webhook_stats(self) -> dict[str, Any]:
        """``total_events``, ``events_by_type``, ``webhook_status``, ``tunnel_info``, ``last_event``."""
        info = self.tunnel_info()
        stats: dict[str, Any] = {
            "total_events": 0,
            "events_by_type": {},
            "webhook_status": "stopped",
            "tunnel_info": present_tunnel(info) if info else None,
            "last_event": None,
        }
        runtime, loop = self._runtime, self._loop
        if runtime is not None and loop is not None and self.running:
            try:
                stats.update(loop.call(RuntimeStatusViews(runtime).webhook_status(), timeout=10))
            except Exception as exc:  # answer with what is known rather than raise
                stats["error"] = f"the receiver did not answer: {type(exc).__name__}"
        stats.update(
            webhook_id=self.webhook_data.get("webhook_id"),
            webhook_url=self.get_public_webhook_url(),
        )
        return stats

    # -- deliveries handed over by PostFlow ------------------------------------

    def process_webhook_sync(self, webhook_data: dict[str, Any]) -> None:
        """Take a delivery PostFlow received itself: journaled, applied and announced once.

        It goes through the same path as an HTTP delivery (read, committed,
        applied by the worker). A payload that is not a Frame.io delivery raises
        ``ValueError`` naming its problems.
        """
        if getattr(_relaying, "active", False):
            return  # an HTTP delivery shown to PostFlow's own wrapper: already journaled
        loop, receiver = self._loop, self._receiver
        if loop is None or receiver is None or not self.running:
            raise RuntimeError("the webhook receiver is not running: call start_webhook_server()")
        body = json.dumps(webhook_data, ensure_ascii=False).encode("utf-8")
        try:
            loop.call(receiver.accept(body, signed=False), timeout=30)
        except (PayloadError, NotJsonError) as exc:
            raise ValueError(f"not a Frame.io delivery: {exc}") from None

    def _fetch_all_comments_for_file_sync(self, file_id: str) -> list[dict[str, Any]]:
        """A file's comments as PostFlow's ``IntelligentWebhookTracker`` reads them.

        PostFlow's tracker asks its manager for this by name to weigh the latest
        comment. The receiver already keeps every comment its deliveries told
        of, so no Frame.io call is made: Frame.io's field names (``text``,
        ``inserted_at``, ``parent_id``, ``completed``, ``owner.name``), deleted
        comments left out. ``[]`` for a file nobody tracks or while stopped.
        """
        runtime, loop = self._runtime, self._loop
        if runtime is None or loop is None or not self.running:
            return []
        try:
            record = loop.call(runtime.records.find(file_id), timeout=10)
        except Exception as exc:  # PostFlow's tracker reads [] as "no comments": say why
            log.warning("comments of %s could not be read: %s", file_id, exc)
            return []
        if record is None:
            return []
        return [
            {
                "id": shown["id"],
                "text": shown["text"] or "",
                "inserted_at": shown["at"] or "",
                "parent_id": shown["thread"],
                "completed": shown["state"] == "resolved",
                "owner": {"name": shown["author"]} if shown["author"] else None,
            }
            for shown in present_comments(record.comments)
        ]

    def _relay(self, body: bytes) -> None:
        """Show an HTTP delivery to PostFlow's wrapper, when it replaced ``process_webhook_sync``."""
        pool = self._relay_pool
        if pool is not None and "process_webhook_sync" in self.__dict__:
            pool.submit(self._show_postflow, body)

    def _show_postflow(self, body: bytes) -> None:
        _relaying.active = True
        try:
            self.process_webhook_sync(json.loads(body))
        except Exception:  # PostFlow's own tracking failed; the delivery itself is safe
            log.exception("PostFlow's own webhook tracking failed on a delivery")
        finally:
            _relaying.active = False

    def verify_frameio_signature(
        self, signature: str, timestamp: str, body: str | bytes, secret: str
    ) -> bool:
        """True when ``secret`` signed ``body`` at ``timestamp`` (within 5 minutes of now)."""
        if not secret:
            log.warning("no signing secret to check a delivery's signature with")
            return False
        raw = body.encode("utf-8") if isinstance(body, str) else body
        try:
            verify([secret], signature, timestamp, raw, time.time())
        except SignatureError as exc:
            log.warning("a delivery's signature was refused: %s", exc.reason)
            return False
        return True

    # -- Frame.io's webhook ----------------------------------------------------

    def create_webhook_sync(
        self,
        frameio_auth: Any = None,
        account_id: str | None = None,
        workspace_id: str | None = None,
        webhook_name: str = "PostFlow Webhook",
    ) -> bool:
        """Create (or update) the Frame.io webhook pointing at the public URL; True when done.

        The signing secret Frame.io returns is in force at once, and the
        webhook follows the tunnel's URL from then on.
        """
        return self.frameio.create(frameio_auth, account_id, workspace_id, webhook_name)

    def delete_webhook_sync(
        self,
        frameio_auth: Any = None,
        account_id: str | None = None,
        workspace_id: str | None = None,
    ) -> bool:
        """Delete the Frame.io webhook this manager created; True when Frame.io has none left."""
        return self.frameio.delete(frameio_auth, account_id, workspace_id)

    # -- helpers ---------------------------------------------------------------

    def resolve_settings(self) -> Settings:
        """The settings this manager runs with: files and environment, then its arguments."""
        if self._settings is not None:
            return self._settings
        settings = load_settings(self._environ, self._flags)
        if self.use_cloudflare_tunnel and settings.tunnel == "off":
            return load_settings(self._environ, {**self._flags, "tunnel": "quick"})
        if not self.use_cloudflare_tunnel and settings.tunnel != "off":
            return load_settings(self._environ, {**self._flags, "tunnel": "off"})
        return settings

    async def _on_public_url(self, public_url: str) -> None:
        self.webhook_url = public_url
        info = self.tunnel_info()
        self.webhook_data["tunnel_info"] = present_tunnel(info) if info else None

    def _fail(self, reason: str) -> bool:
        self.last_error = reason
        log.error("webhook receiver not started: %s", reason)
        return False


class _Refused(Exception):
    """The receiver cannot start; the message is the facade's own."""
