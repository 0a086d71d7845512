"""Counting every HTTP request, the webhook included, for ``/metrics`` and the page's chart.

``RequestMeter`` is a plain ASGI middleware around the whole app, so it sees
the webhook endpoint (an ASGI callable, not a Starlette ``Request`` endpoint)
like any other route. It only reads the status of the answer on its way out
and bumps a counter: no allocation beyond a tuple, no lock, no await of its
own. ``RequestCounts`` also keeps one bucket per minute for the last hour of
webhook answers (accepted, refused, failed), which the status page draws.
Both live in memory and start from zero with the process; the durable
delivery counters are in the database.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from postflow_webhooks.domain.endpoint import WEBHOOK_PATH

Clock = Callable[[], float]

# Paths counted under their own name; everything else is "other", so an
# unknown path never grows the number of series.
KNOWN_PATHS = frozenset(
    {
        WEBHOOK_PATH,
        "/",
        "/health",
        "/livez",
        "/readyz",
        "/metrics",
        "/webhook-status",
        "/uploads",
    }
)
PREFIXES = (("/uploads/", "/uploads/{file_id}"), ("/ui/", "/ui"))
HOUR_MINUTES = 60


def path_label(path: str) -> str:
    """The label a request path is counted under (route templates, never raw ids)."""
    if path in KNOWN_PATHS:
        return path
    for prefix, label in PREFIXES:
        if path.startswith(prefix):
            return label
    return "other"


class RequestCounts:
    """Requests by path, method and status; webhook answers per minute for the last hour."""

    def __init__(self, clock: Clock = time.time) -> None:
        self._clock = clock
        self.requests: Counter[tuple[str, str, int | None]] = Counter()
        self._minutes: deque[list[int]] = deque(maxlen=HOUR_MINUTES)

    def count(self, path: str, method: str, status: int | None) -> None:
        """One request answered (``status`` ``None``: the client left before an answer)."""
        label = path if path == WEBHOOK_PATH else path_label(path)
        self.requests[label, method, status] += 1
        if label == WEBHOOK_PATH and method == "POST" and status is not None:
            self._bucket()[1 if status < 300 else 2 if status < 500 else 3] += 1

    def _bucket(self) -> list[int]:
        minute = int(self._clock() // 60) * 60
        if not self._minutes or self._minutes[-1][0] != minute:
            self._minutes.append([minute, 0, 0, 0])
        return self._minutes[-1]

    def last_hour(self) -> list[dict[str, int]]:
        """One entry per minute of the last hour, oldest first (empty minutes included)."""
        now = int(self._clock() // 60) * 60
        by_minute = {bucket[0]: bucket for bucket in self._minutes}
        series = []
        for step in range(HOUR_MINUTES - 1, -1, -1):
            minute = now - step * 60
            bucket = by_minute.get(minute, [minute, 0, 0, 0])
            series.append(
                {"minute": minute, "accepted": bucket[1], "refused": bucket[2], "failed": bucket[3]}
            )
        return series


class RequestMeter:
    """ASGI middleware: count each HTTP request by path, method and answer status."""

    def __init__(self, app: ASGIApp, *, counts: RequestCounts) -> None:
        self.app = app
        self.counts = counts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on; count it once its answer has started (or it ended without one)."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status: int | None = None

        async def counted(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, counted)
        except Exception:
            if status is None:  # the app's last-resort handler answers 500
                status = 500
            raise
        finally:
            self.counts.count(scope["path"], scope["method"], status)
