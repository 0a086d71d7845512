"""``POST /frameio-webhook``: verify, parse, commit, answer 202. Nothing slow.

The delivery is on disk before the answer; applying it is the worker's job.

This is the one endpoint under load, so it is a plain ASGI callable: it reads
the headers it needs from the scope in one pass and answers with two
messages, without building Starlette's request and response objects or going
through its middleware (``app.py`` routes to it first). Every refusal still
gets the same JSON answer the rest of the app gives (``answers.py``).
"""

from __future__ import annotations

import functools
import json
import logging
import os
from collections.abc import Callable, Sequence
from typing import Any

from starlette.types import Message, Receive, Scope, Send

from postflow_webhooks.adapters.http.answers import ANSWERED, UNEXPECTED, refusal
from postflow_webhooks.adapters.http.errors import BodyTooLargeError, NotJsonError
from postflow_webhooks.adapters.http.signature import SignatureError, verify_values
from postflow_webhooks.domain.errors import PayloadError, StorageError
from postflow_webhooks.domain.events import WebhookEvent
from postflow_webhooks.domain.journal import IncomingDelivery
from postflow_webhooks.domain.ports import Clock, DeliveryInbox

log = logging.getLogger("postflow_webhooks.http")

MAX_BODY_BYTES = 1024 * 1024
WEBHOOK_PATH = "/frameio-webhook"

AcceptedListener = Callable[[str, WebhookEvent], None]

_SIGNATURE = b"x-frameio-signature"
_TIMESTAMP = b"x-frameio-request-timestamp"
_LENGTH = b"content-length"
_JSON_HEADERS = [(b"content-type", b"application/json")]


class _Disconnected(Exception):
    """The client went away before sending the whole body."""


class WebhookReceiver:
    """The webhook endpoint (an ASGI app), with its inbox, clock and signing secrets injected."""

    def __init__(
        self,
        inbox: DeliveryInbox,
        clock: Clock,
        secrets: Callable[[], Sequence[str]],
        *,
        max_body: int = MAX_BODY_BYTES,
        on_accepted: AcceptedListener | None = None,
    ) -> None:
        self._inbox = inbox
        self._on_accepted = on_accepted
        self._clock = clock
        self._secrets = secrets
        self._max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Accept one delivery: 202 once committed, else a precise 4xx (or 503)."""
        try:
            status, body = await self._accept(scope, receive)
        except _Disconnected:
            return
        except ANSWERED as exc:
            answer = refusal(exc)
            assert answer is not None
            status, body = answer[0], _json(answer[1])
        except Exception:  # a bug must still get an answer, never a dropped connection
            log.exception("unexpected error on POST %s", WEBHOOK_PATH)
            status, body = 500, _json(UNEXPECTED)
        headers = [*_JSON_HEADERS, (b"content-length", str(len(body)).encode("ascii"))]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _accept(self, scope: Scope, receive: Receive) -> tuple[int, bytes]:
        signature = timestamp = declared = None
        for name, value in scope["headers"]:
            if name == _SIGNATURE:
                signature = value.decode("latin-1")
            elif name == _TIMESTAMP:
                timestamp = value.decode("latin-1")
            elif name == _LENGTH:
                declared = value
        try:
            body = await self._read_body(receive, declared)
            now = self._clock.now()
            secrets = self._secrets()
            if secrets:
                verify_values(secrets, signature, timestamp, body, now.timestamp())
            event = WebhookEvent.from_payload(_decode(body))
        except (SignatureError, BodyTooLargeError, NotJsonError) as exc:
            await self._count_refusal(exc.reason)
            raise
        except PayloadError:
            await self._count_refusal("invalid_payload")
            raise
        delivery = IncomingDelivery(
            delivery_id=os.urandom(16).hex(),
            received_at=now,
            body=body,
            event_type=event.event_type,
            file_id=event.file_id,
            signed=bool(secrets),
        )
        await self._inbox.append(delivery)
        if self._on_accepted is not None:
            self._on_accepted(delivery.delivery_id, event)
        answer = b'{"accepted":true,"delivery_id":"%s","event_type":%s}' % (
            delivery.delivery_id.encode("ascii"),
            _quoted(event.event_type),
        )
        return 202, answer

    async def _count_refusal(self, reason: str) -> None:
        """Count a refusal; the request still gets its own answer if counting fails."""
        try:
            await self._inbox.reject(reason)
        except StorageError as exc:
            log.warning("could not count a refused request (%s): %s", reason, exc)

    async def _read_body(self, receive: Receive, declared: bytes | None) -> bytes:
        limit = self._max_body
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise BodyTooLargeError(
                "too_large", f"the body is {int(declared)} bytes; the limit is {limit}"
            )
        message: Message = await receive()
        chunks: list[bytes] = []
        size = 0
        while True:
            if message["type"] == "http.disconnect":
                raise _Disconnected
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise BodyTooLargeError("too_large", f"the body is over the limit of {limit} bytes")
            if not message.get("more_body", False):
                if not chunks:
                    return bytes(chunk)
                chunks.append(chunk)
                return b"".join(chunks)
            chunks.append(chunk)
            message = await receive()


@functools.lru_cache(maxsize=1024)
def _quoted(text: str) -> bytes:
    """``text`` as a JSON string; event types repeat, so each is encoded once."""
    return json.dumps(text, ensure_ascii=False).encode("utf-8")


def _json(value: dict[str, Any]) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _decode(body: bytes) -> object:
    if not body.strip():
        raise NotJsonError("not_json", "the body is empty; a JSON object is expected")
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise NotJsonError("not_json", f"the body is not JSON: {exc}") from None
