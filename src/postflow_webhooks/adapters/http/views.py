"""Read-only endpoints for operators: health, stats, tracked files, endpoint help.

The numbers come from a ``StatusViews`` object the composition root provides;
this module only turns query strings into arguments and answers into JSON.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from postflow_webhooks.adapters.http.errors import BadQueryError
from postflow_webhooks.adapters.http.public import may_see_status
from postflow_webhooks.domain.endpoint import (
    MAX_BODY_BYTES,
    MAX_EVENT_TYPE_LENGTH,
    MAX_ID_LENGTH,
    WEBHOOK_PATH,
)
from postflow_webhooks.domain.mapping import fold_status
from postflow_webhooks.domain.statuses import PostflowStatus

MAX_PAGE = 500
MAX_OFFSET = 1_000_000_000


class StatusViews(Protocol):
    """What the read endpoints show, assembled by the application."""

    async def health(self) -> tuple[bool, dict[str, Any]]:
        """Whether the receiver is healthy, and why."""
        ...

    async def webhook_status(self) -> dict[str, Any]:
        """The seed's stats plus backlog, rejections, tunnel and notifier state."""
        ...

    async def uploads(
        self, status: PostflowStatus | None, offset: int, limit: int
    ) -> dict[str, Any]:
        """A page of tracked files."""
        ...

    async def upload(self, file_id: str) -> dict[str, Any] | None:
        """One tracked file with its history, or ``None``."""
        ...


ENDPOINT_HELP = {
    "endpoint": WEBHOOK_PATH,
    "method": "POST",
    "content_type": "application/json",
    "max_body_bytes": MAX_BODY_BYTES,
    "dialects": [
        "PostFlow: {'event_type': ..., 'resource': {'id', 'name', 'status' | 'review_status'}}",
        "Frame.io V4: {'type': ..., 'resource': {'id', 'type'}, 'account': {'id'}, ...}",
        "Frame.io legacy V2: {'type': 'asset.*', 'resource': {'id', 'type': 'asset'}, ...}",
        "any of them wrapped as {'data': {...}}",
    ],
    "signature": "X-Frameio-Request-Timestamp + X-Frameio-Signature: v0=<hex HMAC-SHA256>",
    "max_event_type_length": MAX_EVENT_TYPE_LENGTH,
    "max_id_length": MAX_ID_LENGTH,
    "answers": {
        "202": "committed; applied shortly by the worker ('duplicate': a replay, not stored again)",
        "400": "not JSON",
        "401": "missing, stale or wrong signature",
        "408": "the request head or body arrived too slowly",
        "413": "body over 1 MiB",
        "422": "JSON that cannot be read or stored (the problems are listed with their paths)",
        "431": "request head over the size limit",
        "503": "storage unavailable; Frame.io will retry",
    },
}


class StatusEndpoints:
    """The GET endpoints."""

    def __init__(
        self,
        views: StatusViews,
        signature_required: Callable[[], bool],
    ) -> None:
        self._views = views
        self._signature_required = signature_required

    async def health(self, request: Request) -> Response:
        """200 unless unhealthy, with the reasons (only the verdict through the tunnel, tokenless)."""
        healthy, body = await self._views.health()
        if not may_see_status(request.scope):
            body = {"status": body["status"]}
        return JSONResponse(body, status_code=200 if healthy else 503)

    async def webhook_status(self, request: Request) -> Response:
        """The seed's stats and more."""
        return JSONResponse(await self._views.webhook_status())

    async def uploads(self, request: Request) -> Response:
        """Tracked files, paginated, filterable by status."""
        params = request.query_params
        status = parse_status(params.get("status"))
        offset = int_param(params.get("offset"), "offset", 0, 0, MAX_OFFSET)
        limit = int_param(params.get("limit"), "limit", 50, 1, MAX_PAGE)
        return JSONResponse(await self._views.uploads(status, offset, limit))

    async def upload(self, request: Request) -> Response:
        """One tracked file, or 404."""
        file_id = request.path_params["file_id"]
        found = await self._views.upload(file_id)
        if found is None:
            return JSONResponse(
                {"error": "not_found", "detail": f"no tracked file with id {file_id!r}"},
                status_code=404,
            )
        return JSONResponse(found)

    async def describe_webhook(self, request: Request) -> Response:
        """What ``POST /frameio-webhook`` accepts."""
        return JSONResponse({**ENDPOINT_HELP, "signature_required": self._signature_required()})


def parse_status(text: str | None) -> PostflowStatus | None:
    """A status filter from its name, label or Frame.io word; 400 when unknown."""
    if text is None or not text.strip():
        return None
    by_name = PostflowStatus.from_text(text)
    if by_name is not None:
        return by_name
    folded = fold_status(text).upper()
    for status in PostflowStatus:
        if status.name == folded:
            return status
    names = ", ".join(s.name for s in PostflowStatus)
    raise BadQueryError("bad_status", f"unknown status {text[:40]!r}; use one of {names}")


def int_param(text: str | None, name: str, default: int, low: int, high: int) -> int:
    """A whole-number query parameter from ``low`` to ``high``; 400 naming the parameter otherwise."""
    if text is None or text == "":
        return default
    if not (text.isascii() and text.isdigit()) or len(text) > len(str(high)):
        raise BadQueryError(
            f"bad_{name}", f"{name} must be a whole number from {low} to {high}, got {text[:40]!r}"
        )
    value = int(text)
    if not low <= value <= high:
        raise BadQueryError(f"bad_{name}", f"{name} must be from {low} to {high}, got {value}")
    return value
