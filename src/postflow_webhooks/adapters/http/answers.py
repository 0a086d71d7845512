"""The JSON answer for each error the HTTP adapter reports itself.

One mapping, used by the Starlette exception handlers and by the webhook
endpoint, which answers without going through Starlette's handlers.
"""

from __future__ import annotations

import logging
from typing import Any

from postflow_webhooks.adapters.http.errors import RequestRejectedError
from postflow_webhooks.adapters.http.signature import SignatureError
from postflow_webhooks.domain.errors import PayloadError, StorageError

log = logging.getLogger("postflow_webhooks.http")

ANSWERED = (SignatureError, RequestRejectedError, PayloadError, StorageError)


def refusal(exc: BaseException) -> tuple[int, dict[str, Any]] | None:
    """The status code and JSON body for ``exc``, or ``None`` if it is not ours to answer."""
    if isinstance(exc, SignatureError):
        return 401, {"error": "invalid_signature", "reason": exc.reason, "detail": exc.detail}
    if isinstance(exc, RequestRejectedError):
        return exc.status_code, {"error": exc.reason, "detail": exc.detail}
    if isinstance(exc, PayloadError):
        problems = [{"path": p.path, "message": p.message} for p in exc.problems]
        return 422, {"error": "invalid_payload", "problems": problems}
    if isinstance(exc, StorageError):
        log.error("storage unavailable: %s", exc)
        return 503, {
            "error": "storage_unavailable",
            "detail": "the delivery was not stored; retry later",
        }
    return None


UNEXPECTED: dict[str, Any] = {"error": "internal", "detail": "unexpected error"}
