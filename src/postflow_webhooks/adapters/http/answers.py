"""The one place a refusal becomes an HTTP answer: status code and JSON body.

The Starlette exception handlers call ``refusal`` for every error the app
raises on purpose; anything else is a bug and answers 500 without details.
"""

from __future__ import annotations

import logging
from typing import Any

from postflow_webhooks.adapters.http.errors import RequestRejectedError
from postflow_webhooks.adapters.http.signature import SignatureError
from postflow_webhooks.domain.errors import NotJsonError, PayloadError, StorageError

log = logging.getLogger("postflow_webhooks.http")

ANSWERED = (SignatureError, RequestRejectedError, NotJsonError, PayloadError, StorageError)

UNEXPECTED: dict[str, Any] = {"error": "internal", "detail": "unexpected error"}


def refusal(exc: BaseException) -> tuple[int, dict[str, Any]]:
    """The status code and JSON body for ``exc``; 500 for what is not a refusal."""
    if isinstance(exc, SignatureError):
        return 401, {"error": "invalid_signature", "reason": exc.reason, "detail": exc.detail}
    if isinstance(exc, RequestRejectedError):
        return exc.status_code, {"error": exc.reason, "detail": exc.detail}
    if isinstance(exc, NotJsonError):
        return 400, {"error": "not_json", "detail": exc.detail}
    if isinstance(exc, PayloadError):
        problems = [{"path": p.path, "message": p.message} for p in exc.problems]
        return 422, {"error": "invalid_payload", "problems": problems}
    if isinstance(exc, StorageError):
        log.error("storage unavailable: %s", exc)
        return 503, {
            "error": "storage_unavailable",
            "detail": "the delivery was not stored; retry later",
        }
    return 500, UNEXPECTED


def refusal_reason(exc: BaseException) -> str | None:
    """The reason a refused delivery is counted under; ``None`` when it is not counted."""
    if isinstance(exc, SignatureError | RequestRejectedError):
        return exc.reason
    if isinstance(exc, NotJsonError):
        return "not_json"
    if isinstance(exc, PayloadError):
        return "invalid_payload"
    return None
