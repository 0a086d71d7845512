"""``POST /frameio-webhook``: verify, read, commit, answer 202. Nothing slow.

The delivery is on disk before the answer; applying it is the worker's job.
A signed delivery whose signature and timestamp were already accepted is a
replay: it is answered 202 with ``"duplicate": true`` and not stored again
(for the deliveries whose own bytes decide something, ``replay_matters``).
The endpoint is an ASGI callable (Starlette routes to it like any endpoint):
it reads the raw bytes it must hash, and answers with two messages. A refusal
is counted by its reason and raised; the app's exception handlers answer it
(``answers.py``).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Sequence
from typing import Protocol

from starlette.types import Message, Receive, Scope, Send

from postflow_webhooks.adapters.http.answers import ANSWERED, refusal_reason
from postflow_webhooks.adapters.http.errors import BodyTooLargeError
from postflow_webhooks.adapters.http.signature import Signed, verify
from postflow_webhooks.domain.endpoint import MAX_BODY_BYTES
from postflow_webhooks.domain.errors import StorageError
from postflow_webhooks.domain.events import EventKind, WebhookEvent
from postflow_webhooks.domain.journal import IncomingDelivery
from postflow_webhooks.domain.ports import Clock, DeliveryInbox, EventReader

log = logging.getLogger("postflow_webhooks.http")

_SIGNATURE = b"x-frameio-signature"
_TIMESTAMP = b"x-frameio-request-timestamp"
_LENGTH = b"content-length"
_JSON_HEADERS = [(b"content-type", b"application/json")]


class _Disconnected(Exception):
    """The client went away before sending the whole body."""


class Signatures(Protocol):
    """Which secrets sign deliveries now, and whether a signature is required."""

    def current(self) -> Sequence[str]:
        """The secrets in force."""
        ...

    def required(self) -> bool:
        """True when unsigned deliveries are refused."""
        ...


AcceptedListener = Callable[[bytes], None]


def replay_matters(event: WebhookEvent) -> bool:
    """True when applying ``event`` again could change a file (payload state, or a new version).

    The PostFlow dialect carries the state in its payload, and a versioning
    event starts a new version from nothing but itself. Frame.io's own deliveries carry IDs only, and two genuine events can have
    identical bytes and timestamp (two ``metadata.value.updated`` within a
    second): applying one again only reads the file afresh from Frame.io, so
    they are never taken for replays.
    """
    return not event.ids_only or event.kind is EventKind.VERSIONED


class WebhookReceiver:
    """The webhook endpoint, with its inbox, reader, clock and signing secrets injected.

    ``on_accepted``, when set, hears the body of every delivery accepted over
    HTTP (the PostFlow facade relays them to PostFlow's own tracking).
    """

    def __init__(
        self,
        inbox: DeliveryInbox,
        read_event: EventReader,
        clock: Clock,
        signatures: Signatures,
        *,
        max_body: int = MAX_BODY_BYTES,
    ) -> None:
        self._inbox = inbox
        self._read = read_event
        self._clock = clock
        self._signatures = signatures
        self._max_body = max_body
        self.on_accepted: AcceptedListener | None = None

    async def accept(
        self, body: bytes, *, signed: bool, proof: Signed | None = None
    ) -> tuple[IncomingDelivery, str | None]:
        """Read and commit one delivery's bytes; raises the refusal when it is not one.

        ``proof`` is what its signature was verified with. Returns the delivery,
        and for a replay of one already accepted (same signature and timestamp)
        the first one's id: then nothing was stored. Only deliveries whose own
        bytes decide something are checked (``replay_matters``).
        """
        event = self._read(body)
        if proof is not None and not replay_matters(event):
            proof = None
        delivery = IncomingDelivery(
            delivery_id=os.urandom(16).hex(),
            received_at=self._clock.now(),
            body=body,
            event_type=event.event_type,
            file_id=event.file_id,
            signed=signed,
            signature=proof.digest if proof else None,
            timestamp=proof.timestamp if proof else None,
        )
        return delivery, await self._inbox.append(delivery)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Accept one delivery: 202 once committed, else a refusal for the handlers."""
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
        except _Disconnected:
            return
        signed = self._signatures.required()
        try:
            proof = None
            if signed:
                now = self._clock.now().timestamp()
                proof = verify(self._signatures.current(), signature, timestamp, body, now)
            delivery, first = await self.accept(body, signed=signed, proof=proof)
        except ANSWERED as exc:
            await self._count_refusal(exc)
            raise
        accepted: dict[str, object] = {"accepted": True}
        if first is None:
            accepted["delivery_id"] = delivery.delivery_id
            if self.on_accepted is not None:
                self.on_accepted(body)
        else:  # a replay: already accepted, not stored again
            accepted.update(duplicate=True, delivery_id=first)
        accepted["event_type"] = delivery.event_type
        answer = json.dumps(accepted, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        headers = [*_JSON_HEADERS, (b"content-length", str(len(answer)).encode("ascii"))]
        await send({"type": "http.response.start", "status": 202, "headers": headers})
        await send({"type": "http.response.body", "body": answer})

    async def _count_refusal(self, exc: Exception) -> None:
        """Count a refusal; the request still gets its own answer if counting fails."""
        reason = refusal_reason(exc)
        if reason is None:
            return
        try:
            await self._inbox.reject(reason)
        except StorageError as error:
            log.warning("could not count a refused request (%s): %s", reason, error)

    async def _read_body(self, receive: Receive, declared: bytes | None) -> bytes:
        limit = self._max_body
        if declared and declared.isdigit() and (len(declared) > 18 or int(declared) > limit):
            error = BodyTooLargeError(
                "too_large", f"the body is {declared.decode()} bytes; the limit is {limit}"
            )
            await self._count_refusal(error)
            raise error
        chunks: list[bytes] = []
        size = 0
        while True:
            message: Message = await receive()
            if message["type"] == "http.disconnect":
                raise _Disconnected
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                error = BodyTooLargeError(
                    "too_large", f"the body is over the limit of {limit} bytes"
                )
                await self._count_refusal(error)
                raise error
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)
