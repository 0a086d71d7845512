"""A real local HTTP server that answers like Discord's Execute Webhook endpoint.

It validates bodies (limits, colours, mentions), sends real rate-limit headers,
enforces a small bucket, and has knobs for 429 (JSON or Cloudflare HTML),
5xx bursts, deleted webhooks, bad tokens, slow answers and dropped
connections. Its clock is injectable so tests can share simulated time.
"""

from __future__ import annotations

import asyncio
import math
import re
import secrets
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

WEBHOOK_ID = "112233445566778899"
LIMITS = {"title": 256, "description": 4096, "footer": 2048, "author": 256}
FIELD_NAME, FIELD_VALUE, TOTAL, CONTENT, EMBEDS, FIELDS = 256, 1024, 6000, 2000, 10, 25
MENTION = re.compile(r"@(?:everyone|here)|<@(?P<kind>[!&]?)(?P<id>\d+)>")
SNOWFLAKE = re.compile(r"^\d{1,20}$")
EVERYONE = ("everyone", "users", "roles")
CLOUDFLARE_HTML = "<!DOCTYPE html><html><head><title>Access denied | Cloudflare</title></head>"


@attrs.define
class Failure:
    """A canned answer for the next request(s)."""

    status: int
    html: bool = False
    message: str = "fake failure"
    code: int = 0
    retry_after: float = 1.0


class FakeDiscord:
    """Discord's webhook endpoint on 127.0.0.1 with a free port, in a background thread."""

    def __init__(
        self,
        *,
        bucket_limit: int = 5,
        bucket_window: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        epoch: float | None = None,
        webhook_id: str = WEBHOOK_ID,
    ) -> None:
        self.webhook_id = webhook_id
        self.bucket_limit = bucket_limit
        self.bucket_window = bucket_window
        self.clock = clock
        self._epoch = (time.time() - clock()) if epoch is None else epoch
        self.token = secrets.token_urlsafe(48)
        self.bucket_id = secrets.token_hex(16)
        self.messages: list[dict[str, Any]] = []
        self.pings: list[str] = []
        self.rejected: list[dict[str, Any]] = []
        self.answers: Counter[int] = Counter()
        self.request_times: list[float] = []
        self.queries: list[dict[str, str]] = []
        self.deleted = False
        self.bad_token = False
        self.outage_until: float | None = None
        self.outage_status = 503
        self._failures: list[Failure] = []
        self._slow: list[float] = []
        self._drops: list[bool] = []
        self._window_start: float | None = None
        self._window_count = 0
        self._lock = threading.Lock()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0
        routes = [
            Route("/api/v10/webhooks/{wid}/{token}", self._execute, methods=["POST"]),
            Route("/api/v10/webhooks/{wid}/{token}", self._show, methods=["GET"]),
        ]
        self._app = Starlette(routes=routes)

    # -- lifecycle -------------------------------------------------------

    def start(self) -> FakeDiscord:
        """Bind a free port and serve until ``stop``."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self._asgi, interface="asgi3", lifespan="off", log_level="critical", access_log=False
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("fake Discord did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Shut the server down and join its thread."""
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)

    def __enter__(self) -> FakeDiscord:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def webhook_url(self) -> str:
        """The secret URL a notifier posts to."""
        return f"http://127.0.0.1:{self.port}/api/v10/webhooks/{self.webhook_id}/{self.token}"

    # -- knobs -----------------------------------------------------------

    def fail_next(self, status: int, count: int = 1, **details: Any) -> None:
        """Answer the next ``count`` requests with ``status`` (``html=True`` for Cloudflare)."""
        with self._lock:
            self._failures.extend(Failure(status, **details) for _ in range(count))

    def outage(self, until: float, status: int = 503) -> None:
        """Answer every request with ``status`` until the clock reads ``until``."""
        self.outage_until, self.outage_status = until, status

    def slow_next(self, seconds: float, count: int = 1) -> None:
        """Delay the next answers by ``seconds`` of real time."""
        with self._lock:
            self._slow.extend([seconds] * count)

    def drop_next(self, count: int = 1, *, after_accept: bool = False) -> None:
        """Drop the connection without an answer (after recording the message if asked)."""
        with self._lock:
            self._drops.extend([after_accept] * count)

    def delete_webhook(self) -> None:
        """The webhook was deleted: 404 Unknown Webhook from now on."""
        self.deleted = True

    def revoke_token(self) -> None:
        """The token is no longer valid: 401 Invalid Webhook Token from now on."""
        self.bad_token = True

    # -- the endpoint ----------------------------------------------------

    async def _asgi(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        drop: bool | None = None
        with self._lock:
            if self._drops:
                drop = self._drops.pop(0)
        if drop is None:
            await self._app(scope, receive, send)
            return
        if drop:
            request = Request(scope, receive)
            body = await request.json()
            self._record(body)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        raise ConnectionAbortedError("fake Discord dropped the connection")

    async def _execute(self, request: Request) -> Response:
        with self._lock:
            delay = self._slow.pop(0) if self._slow else 0.0
        if delay:
            await asyncio.sleep(delay)
        response = await self._answer(request)
        with self._lock:
            self.answers[response.status_code] += 1
            self.request_times.append(time.monotonic())
            self.queries.append(dict(request.query_params))
        return response

    async def _show(self, request: Request) -> Response:
        """GET on the webhook: what it is (no message posted), or why it is unusable."""
        wid, token = request.path_params["wid"], request.path_params["token"]
        if self.deleted or wid != self.webhook_id:
            return JSONResponse({"message": "Unknown Webhook", "code": 10015}, 404)
        if self.bad_token or token != self.token:
            return JSONResponse({"message": "Invalid Webhook Token", "code": 50027}, 401)
        return JSONResponse({"id": wid, "type": 1, "name": "PostFlow", "channel_id": "1"})

    async def _answer(self, request: Request) -> Response:
        wid, token = request.path_params["wid"], request.path_params["token"]
        if self.deleted or wid != self.webhook_id:
            return JSONResponse({"message": "Unknown Webhook", "code": 10015}, 404)
        if self.bad_token or token != self.token:
            return JSONResponse({"message": "Invalid Webhook Token", "code": 50027}, 401)
        now = self.clock()
        with self._lock:
            failure = self._failures.pop(0) if self._failures else None
        if failure is None and self.outage_until is not None and now < self.outage_until:
            failure = Failure(self.outage_status)
        if failure is not None:
            return self._failure(failure)
        with self._lock:
            if self._window_start is None or now >= self._window_start + self.bucket_window:
                self._window_start, self._window_count = now, 0
            if self._window_count >= self.bucket_limit:
                return self._rate_limited(now)
            self._window_count += 1
            headers = self._headers(now)
        try:
            body = await request.json()
        except ValueError:
            return JSONResponse({"message": "400: Bad Request", "code": 50109}, 400, headers)
        errors = validate(body)
        if errors:
            self.rejected.append(body)
            payload = {"message": "Invalid Form Body", "code": 50035, "errors": errors}
            return JSONResponse(payload, 400, headers)
        message = self._record(body)
        if request.query_params.get("wait", "").lower() != "true":
            return Response(status_code=204, headers=headers)
        return JSONResponse(message, 200, headers)

    def _record(self, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            message = {"id": str(10**17 + len(self.messages)), "channel_id": "1", **body}
            self.messages.append(message)
            self.pings.extend(pings(body))
        return message

    def _headers(self, now: float) -> dict[str, str]:
        start = self._window_start if self._window_start is not None else now
        reset_after = math.ceil(max(start + self.bucket_window - now, 0.0) * 1000) / 1000
        return {
            "X-RateLimit-Limit": str(self.bucket_limit),
            "X-RateLimit-Remaining": str(max(self.bucket_limit - self._window_count, 0)),
            "X-RateLimit-Reset": f"{self._epoch + now + reset_after:.3f}",
            "X-RateLimit-Reset-After": f"{reset_after:.3f}",
            "X-RateLimit-Bucket": self.bucket_id,
        }

    def _rate_limited(self, now: float) -> Response:
        headers = self._headers(now)
        retry_after = float(headers["X-RateLimit-Reset-After"])
        headers |= {"Retry-After": str(math.ceil(retry_after)), "X-RateLimit-Scope": "user"}
        body = {"message": "You are being rate limited.", "retry_after": retry_after}
        return JSONResponse({**body, "global": False}, 429, headers)

    def _failure(self, failure: Failure) -> Response:
        if failure.html:
            headers = {"Retry-After": str(math.ceil(failure.retry_after))}
            return HTMLResponse(CLOUDFLARE_HTML, failure.status, headers)
        if failure.status == 429:
            body = {"message": "You are being rate limited.", "retry_after": failure.retry_after}
            headers = {"Retry-After": str(math.ceil(failure.retry_after))}
            return JSONResponse(
                {**body, "global": True}, 429, headers | {"X-RateLimit-Global": "true"}
            )
        if failure.status >= 500:
            return HTMLResponse(
                f"<html><body>{failure.status} Bad Gateway</body></html>", failure.status
            )
        payload = {"message": failure.message, "code": failure.code}
        return JSONResponse(payload, failure.status)


def validate(body: object) -> dict[str, Any]:
    """Discord's checks on an Execute Webhook body, as its nested ``errors`` object."""
    errors: dict[str, Any] = {}

    def fail(path: str, message: str) -> None:
        errors[path] = {"_errors": [{"code": "BASE_TYPE_BAD_LENGTH", "message": message}]}

    if not isinstance(body, dict):
        fail("body", "expected an object")
        return errors
    content, embeds = body.get("content"), body.get("embeds")
    if not content and not embeds:
        fail("content", "Cannot send an empty message")
    if content is not None and (not isinstance(content, str) or len(content) > CONTENT):
        fail("content", f"Must be {CONTENT} or fewer in length.")
    username = body.get("username")
    if username is not None and (
        not isinstance(username, str)
        or not 1 <= len(username) <= 80
        or any(word in username.lower() for word in ("discord", "clyde"))
    ):
        fail("username", "Invalid username")
    mentions = body.get("allowed_mentions")
    if mentions is not None and not _valid_mentions(mentions):
        fail("allowed_mentions", "Invalid allowed mentions")
    if embeds is not None:
        if not isinstance(embeds, list) or len(embeds) > EMBEDS:
            fail("embeds", f"Must be {EMBEDS} or fewer in length.")
        else:
            total = 0
            for index, embed in enumerate(embeds):
                total += _check_embed(f"embeds.{index}", embed, fail)
            if total > TOTAL:
                fail("embeds", f"Embed size exceeds maximum size of {TOTAL}")
    return errors


def _valid_mentions(mentions: Any) -> bool:
    """Discord's rules: known parse types, id lists of snowflakes, a type never in both."""
    if not isinstance(mentions, dict):
        return False
    parse = mentions.get("parse", [])
    if not isinstance(parse, list) or not set(parse) <= set(EVERYONE):
        return False
    for kind in ("roles", "users"):
        ids = mentions.get(kind)
        if ids is None:
            continue
        if kind in parse or not isinstance(ids, list) or len(ids) > 100:
            return False
        if not all(isinstance(i, str) and SNOWFLAKE.match(i) for i in ids):
            return False
    return True


def pings(body: dict[str, Any]) -> list[str]:
    """Whom a message pings: the mentions in its content that ``allowed_mentions`` lets through.

    Embeds never ping. Without ``allowed_mentions`` Discord parses everything.
    """
    allowed = body.get("allowed_mentions")
    if not isinstance(allowed, dict):
        allowed = {"parse": list(EVERYONE)}
    parse = allowed.get("parse", [])
    found = []
    for match in MENTION.finditer(body.get("content") or ""):
        text, kind, ident = match.group(0), match.group("kind"), match.group("id")
        if ident is None:
            ok = "everyone" in parse
        elif kind == "&":
            ok = "roles" in parse or ident in (allowed.get("roles") or [])
        else:
            ok = "users" in parse or ident in (allowed.get("users") or [])
        if ok:
            found.append(text)
    return found


def _check_embed(where: str, embed: Any, fail: Callable[[str, str], None]) -> int:
    if not isinstance(embed, dict):
        fail(where, "expected an object")
        return 0
    texts = {
        "title": embed.get("title"),
        "description": embed.get("description"),
        "footer": (embed.get("footer") or {}).get("text"),
        "author": (embed.get("author") or {}).get("name"),
    }
    total = 0
    for key, text in texts.items():
        if text is None:
            continue
        if not isinstance(text, str) or len(text) > LIMITS[key]:
            fail(f"{where}.{key}", f"Must be {LIMITS[key]} or fewer in length.")
        total += len(text) if isinstance(text, str) else 0
    fields = embed.get("fields") or []
    if len(fields) > FIELDS:
        fail(f"{where}.fields", f"Must be {FIELDS} or fewer in length.")
    for index, field in enumerate(fields):
        name, value = field.get("name"), field.get("value")
        if not isinstance(name, str) or not 1 <= len(name) <= FIELD_NAME:
            fail(f"{where}.fields.{index}.name", "Must be between 1 and 256 in length.")
        if not isinstance(value, str) or not 1 <= len(value) <= FIELD_VALUE:
            fail(f"{where}.fields.{index}.value", "Must be between 1 and 1024 in length.")
        total += len(name or "") + len(value or "")
    colour = embed.get("color")
    if colour is not None and (
        not isinstance(colour, int) or isinstance(colour, bool) or not 0 <= colour <= 0xFFFFFF
    ):
        fail(f"{where}.color", "Int value should be less than or equal to 16777215.")
    url = embed.get("url")
    if url is not None and not (isinstance(url, str) and url.startswith(("http://", "https://"))):
        fail(f"{where}.url", "Not a well formed URL.")
    stamp = embed.get("timestamp")
    if stamp is not None:
        try:
            datetime.fromisoformat(stamp)
        except (TypeError, ValueError):
            fail(f"{where}.timestamp", "Could not parse timestamp.")
    return total


class SimulatedTime:
    """Simulated time shared by the dispatcher, the notifier and the fake: sleeping advances it."""

    def __init__(self, start: datetime | None = None) -> None:
        self.start = start or datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
        self.elapsed = 0.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        """Seconds since the start."""
        return self.elapsed

    def now(self) -> datetime:
        """The current simulated UTC time (fits the ``Clock`` port)."""
        return self.start + timedelta(seconds=self.elapsed)

    async def sleep(self, seconds: float) -> None:
        """Advance time at once instead of sleeping; let other tasks run."""
        self.sleeps.append(seconds)
        self.elapsed += max(seconds, 0.0)
        await asyncio.sleep(0)
