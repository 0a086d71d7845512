"""Frame.io's request signature (``v0`` scheme), verified on the raw bytes.

The signed string is ``b"v0:" + timestamp + b":" + body``, HMAC-SHA256 keyed
with the webhook secret, sent as ``X-Frameio-Signature: v0=<hex>`` next to
``X-Frameio-Request-Timestamp`` (Unix seconds).
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence

MAX_SKEW_SECONDS = 300
_PREFIX = "v0="


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
) -> None:
    """Raise ``SignatureError`` unless one of ``secrets`` signed ``body`` recently.

    ``signature`` and ``timestamp`` are the two header values (``None`` when absent).
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
    if not timestamp.isascii() or not timestamp.isdigit():
        raise SignatureError("bad_timestamp", "the request timestamp is not Unix seconds")
    skew = now - int(timestamp)
    if skew > MAX_SKEW_SECONDS:
        raise SignatureError("stale_timestamp", f"the request is {int(skew)} s old (limit 300 s)")
    if skew < -MAX_SKEW_SECONDS:
        raise SignatureError(
            "future_timestamp", f"the request is {int(-skew)} s in the future (limit 300 s)"
        )
    given = signature.strip()
    if not given.startswith(_PREFIX):
        raise SignatureError("bad_signature_format", "the signature does not start with 'v0='")
    given_bytes = given.lower().encode("ascii", "replace")
    for secret in secrets:
        if hmac.compare_digest(sign(secret, timestamp, body).encode("ascii"), given_bytes):
            return
    raise SignatureError("bad_signature", "the signature does not match the body")
