"""Connection limits that uvicorn's httptools protocol lacks, added by a subclass of it.

uvicorn closes a keep-alive connection left idle after a response
(``timeout_keep_alive``), and nothing more: a connection that never sends a
request stays open for good, a request head may be of any size (httptools has
no limit; a 64 MiB header stalls the loop for seconds), and connections are
bounded only by the open-files limit, past which every delivery fails.
``LimitedHttpToolsProtocol`` adds, per server (``ConnectionGuard``):

* a head size limit: a head not complete within ``max_header_bytes`` is
  answered 431 and the connection closed (at most one network read more is
  ever buffered);
* a head time limit: the head must be complete within ``header_timeout`` of
  the connection opening, or of its first byte after a response; else 408
  (or a plain close when nothing was sent at all);
* a body time limit: the body must be complete within ``body_timeout`` of
  the head; else 408 and close;
* a connection cap: at ``max_connections`` open, the connection that has
  waited on its client the longest (idle, or still sending its head or body)
  is closed to make room; when every connection has a request being answered,
  the new one is closed instead. Either way a warning is logged (at most one
  line every 10 s, with the counts).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter
from collections.abc import Callable
from typing import Any, ClassVar

import attrs
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

log = logging.getLogger("postflow_webhooks.http")

LOG_EVERY_SECONDS = 10.0


@attrs.frozen
class ConnectionLimits:
    """What one connection may take: head size, time to send the head and the body, idle time."""

    max_header_bytes: int = 16384
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    idle_timeout: float = 5.0
    max_connections: int = 2048


_WHAT = {
    "evicted": "idle or slow connections closed to make room (max_connections {max_connections})",
    "refused": "new connections closed: max_connections ({max_connections}) reached, none idle",
    "head_too_large": "request heads over {max_header_bytes} bytes (431)",
    "head_timeout": "connections closed for a head slower than {header_timeout:g} s",
    "body_timeout": "requests closed for a body slower than {body_timeout:g} s (408)",
}


class ConnectionGuard:
    """The limits and the open connections of one server, shared by its connections."""

    def __init__(self, limits: ConnectionLimits) -> None:
        self.limits = limits
        self.open: set[LimitedHttpToolsProtocol] = set()
        self.counts: Counter[str] = Counter()
        self._unlogged: Counter[str] = Counter()
        self._flush: asyncio.TimerHandle | None = None
        self.on_refusal: Callable[[str], None] | None = None
        self._logged_at = -LOG_EVERY_SECONDS

    def admit(self, connection: LimitedHttpToolsProtocol) -> bool:
        """Count a new connection in; at the cap, close the one waiting longest (or refuse)."""
        if len(self.open) >= self.limits.max_connections:
            waiting = [c for c in self.open if c.waiting_since is not None]
            if not waiting:
                self.note("refused")
                return False
            oldest = min(waiting, key=lambda c: c.waiting_since or 0.0)
            self.open.discard(oldest)
            oldest.transport.close()
            self.note("evicted")
        self.open.add(connection)
        return True

    def release(self, connection: LimitedHttpToolsProtocol) -> None:
        """A connection closed."""
        self.open.discard(connection)

    def note(self, kind: str) -> None:
        """Count a limit enforced; log at once, or in a summary at most every 10 s."""
        self.counts[kind] += 1
        self._unlogged[kind] += 1
        now = time.monotonic()
        if now - self._logged_at >= LOG_EVERY_SECONDS:
            self._log(now)
        elif self._flush is None:
            delay = LOG_EVERY_SECONDS - (now - self._logged_at)
            self._flush = asyncio.get_running_loop().call_later(delay, self._log_pending)

    def _log_pending(self) -> None:
        self._flush = None
        if self._unlogged:
            self._log(time.monotonic())

    def _log(self, now: float) -> None:
        self._logged_at = now
        limits = attrs.asdict(self.limits)
        parts = [
            f"{n} {_WHAT[kind].format(**limits)}" for kind, n in sorted(self._unlogged.items())
        ]
        self._unlogged.clear()
        log.warning("connection limits: %s; %d open", "; ".join(parts), len(self.open))


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the guard's limits; ``protocol_for`` makes one."""

    guard: ClassVar[ConnectionGuard]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # When it began waiting on its client (idle, head or body); None while answered.
        self.waiting_since: float | None = None
        self._in_head = True
        self._head_bytes = 0
        self._deadline: asyncio.TimerHandle | None = None

    # -- the connection --------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Admit it (or close it at once), and start the clock for its first head."""
        super().connection_made(transport)
        self.waiting_since = time.monotonic()
        if not self.guard.admit(self):
            transport.close()
            return
        self._arm(self.guard.limits.header_timeout, self._head_too_slow)

    def connection_lost(self, exc: Exception | None) -> None:
        """Forget it."""
        self._disarm()
        self.guard.release(self)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        """Feed the parser, but never more than ``max_header_bytes`` of one head."""
        limit = self.guard.limits.max_header_bytes
        while data and not self.transport.is_closing():
            if not self._in_head:
                super().data_received(data)
                return
            room = limit - self._head_bytes
            if room > 0:
                chunk, data = data[:room], data[room:]
                self._head_bytes += len(chunk)
                super().data_received(chunk)
            if self._in_head and self._head_bytes >= limit and not self.transport.is_closing():
                self.guard.note("head_too_large")
                self._refuse(431, "headers_too_large", f"the request head is over {limit} bytes")
                return

    # -- parser callbacks: where each request is ---------------------------------

    def on_message_begin(self) -> None:
        """A head starts; after a response (or pipelined), its clock starts now."""
        super().on_message_begin()
        if self._deadline is None:
            self._arm(self.guard.limits.header_timeout, self._head_too_slow)

    def on_headers_complete(self) -> None:
        """The head is in: the body's clock starts."""
        super().on_headers_complete()
        self._in_head = False
        self._arm(self.guard.limits.body_timeout, self._body_too_slow)

    def on_message_complete(self) -> None:
        """The request is in: the app answers it, with no clock but its own."""
        super().on_message_complete()
        self._disarm()
        self._in_head, self._head_bytes = True, 0
        self.waiting_since = None

    def on_response_complete(self) -> None:
        """Answered: idle (uvicorn's keep-alive clock), unless a pipelined request goes on."""
        super().on_response_complete()
        if self.cycle is None or self.cycle.response_complete:
            self.waiting_since = time.monotonic()

    # -- the clocks ------------------------------------------------------------

    def _arm(self, seconds: float, then: Any) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, then)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _head_too_slow(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        self.guard.note("head_timeout")
        if self._head_bytes:
            self._refuse(408, "header_timeout", "the request head took too long")
        else:
            self.transport.close()

    def _body_too_slow(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        self.guard.note("body_timeout")
        if self.cycle is not None and self.cycle.response_started:
            self.transport.close()
        else:
            self._refuse(408, "body_timeout", "the request body took too long")

    def _refuse(self, status: int, reason: str, detail: str) -> None:
        """Answer ``status`` with a JSON reason and close; the app (if any) sees a disconnect."""
        if self.guard.on_refusal is not None:
            self.guard.on_refusal(reason)
        body = json.dumps({"error": reason, "detail": detail}).encode()
        head = (
            b"content-type: application/json\r\ncontent-length: %d\r\nconnection: close\r\n\r\n"
            % len(body)
        )
        self.transport.write(STATUS_LINE[status] + head + body)
        self.transport.close()


def protocol_for(
    limits: ConnectionLimits, on_refusal: Callable[[str], None] | None = None
) -> type[LimitedHttpToolsProtocol]:
    """A protocol class for one server (uvicorn's ``http=``), its guard holding ``limits``.

    ``on_refusal`` hears the reason of every request answered 431 or 408 here,
    so it is counted with the app's other refusals.
    """
    guard = ConnectionGuard(limits)
    guard.on_refusal = on_refusal
    return type("LimitedHttpToolsProtocol", (LimitedHttpToolsProtocol,), {"guard": guard})
