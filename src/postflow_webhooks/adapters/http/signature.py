"""Frame.io's request signature (``v0`` scheme), verified on the raw bytes.

The signed string is ``b"v0:" + timestamp + b":" + body``, HMAC-SHA256 keyed
with the webhook secret, sent as ``X-Frameio-Signature: v0=<hex>`` next to
``X-Frameio-Request-Timestamp`` (Unix seconds). The timestamp must be within
``MAX_SKEW_SECONDS`` of this machine's clock, either way (both ends included).
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence

import attrs

from postflow_webhooks.domain.endpoint import MAX_SKEW_SECONDS

MAX_TIMESTAMP_DIGITS = 12
_PREFIX = "v0="


@attrs.frozen
class Signed:
    """What a verified request was signed with: the digest and the timestamp."""

    digest: bytes = attrs.field(repr=False)
    timestamp: int


class SignatureError(Exception):
    """A request whose signature does not prove it came from Frame.io."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Frameio-Signature`` value for ``body`` sent at ``timestamp``."""
    message = b"v0:" + timestamp.encode("ascii") + b":" + body
    return _PREFIX + hmac.digest(secret.encode("utf-8"), message, "sha256").hex()


def verify(
    secrets: Sequence[str], signature: str | None, timestamp: str | None, body: bytes, now: float
) -> Signed:
    """What a request was signed with; ``SignatureError`` unless one of ``secrets`` signed it.

    ``signature`` and ``timestamp`` are the two header values (``None`` when
    absent); the timestamp must be within ``MAX_SKEW_SECONDS`` of ``now``.
    """
    if not secrets:
        raise SignatureError(
            "no_secret_yet",
            "no signing secret is in force yet: deliveries are refused until the Frame.io "
            "webhook is registered and its secret stored",
        )
    if not signature:
        raise SignatureError("missing_signature", "the X-Frameio-Signature header is missing")
    if not timestamp:
        raise SignatureError(
            "missing_timestamp", "the X-Frameio-Request-Timestamp header is missing"
        )
    timestamp = timestamp.strip()
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= MAX_TIMESTAMP_DIGITS):
        raise SignatureError(
            "bad_timestamp",
            f"the request timestamp is not Unix seconds (at most {MAX_TIMESTAMP_DIGITS} digits)",
        )
    sent = int(timestamp)
    skew = int(now) - sent
    if skew > MAX_SKEW_SECONDS:
        raise SignatureError(
            "stale_timestamp", f"the request is {skew} s old (limit {MAX_SKEW_SECONDS} s)"
        )
    if skew < -MAX_SKEW_SECONDS:
        raise SignatureError(
            "future_timestamp",
            f"the request is {-skew} s in the future (limit {MAX_SKEW_SECONDS} s)",
        )
    given = signature.strip().lower()
    if not given.startswith(_PREFIX):
        raise SignatureError("bad_signature_format", "the signature does not start with 'v0='")
    given_bytes = given.encode("ascii", "replace")
    for secret in secrets:
        if hmac.compare_digest(sign(secret, timestamp, body).encode("ascii"), given_bytes):
            return Signed(bytes.fromhex(given[len(_PREFIX) :]), sent)
    raise SignatureError("bad_signature", "the signature does not match the body")
