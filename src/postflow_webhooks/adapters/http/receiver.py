"""``POST /frameio-webhook``: verify, parse, commit, answer 202. Nothing slow.

The delivery is on disk before the answer; applying it is the worker's job.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from postflow_webhooks.adapters.http.errors import BodyTooLargeError, NotJsonError
from postflow_webhooks.adapters.http.signature import SignatureError, verify
from postflow_webhooks.domain.errors import PayloadError
from postflow_webhooks.domain.events import WebhookEvent
from postflow_webhooks.domain.journal import IncomingDelivery
from postflow_webhooks.domain.ports import Clock, DeliveryInbox

MAX_BODY_BYTES = 1024 * 1024

AcceptedListener = Callable[[str, WebhookEvent], None]


class WebhookReceiver:
    """The webhook endpoint, with its inbox, clock and signing secrets injected."""

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

    async def receive(self, request: Request) -> Response:
        """Accept one delivery: 202 once committed, else a precise 4xx (or 503)."""
        try:
            body = await self._read_body(request)
            secrets = self._secrets()
            if secrets:
                verify(secrets, request.headers, body, self._clock.now().timestamp())
            event = WebhookEvent.from_payload(_decode(body))
        except (SignatureError, BodyTooLargeError, NotJsonError) as exc:
            await self._inbox.reject(exc.reason)
            raise
        except PayloadError:
            await self._inbox.reject("invalid_payload")
            raise
        delivery = IncomingDelivery(
            delivery_id=uuid.uuid4().hex,
            received_at=self._clock.now(),
            body=body,
            event_type=event.event_type,
            file_id=event.file_id,
            signed=bool(secrets),
        )
        await self._inbox.append(delivery)
        if self._on_accepted is not None:
            self._on_accepted(delivery.delivery_id, event)
        return JSONResponse(
            {"accepted": True, "delivery_id": delivery.delivery_id, "event_type": event.event_type},
            status_code=202,
        )

    async def _read_body(self, request: Request) -> bytes:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self._max_body:
            raise BodyTooLargeError(
                "too_large", f"the body is {declared} bytes; the limit is {self._max_body}"
            )
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self._max_body:
                raise BodyTooLargeError(
                    "too_large", f"the body is over the limit of {self._max_body} bytes"
                )
            chunks.append(chunk)
        return b"".join(chunks)


def _decode(body: bytes) -> object:
    if not body.strip():
        raise NotJsonError("not_json", "the body is empty; a JSON object is expected")
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise NotJsonError("not_json", f"the body is not JSON: {exc}") from None
