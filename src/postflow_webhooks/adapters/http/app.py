"""Builds the Starlette application: routes, and errors mapped to answers once."""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from postflow_webhooks.adapters.http.answers import ANSWERED, UNEXPECTED, refusal
from postflow_webhooks.adapters.http.public import PublicAccessGuard
from postflow_webhooks.adapters.http.receiver import WEBHOOK_PATH, WebhookReceiver
from postflow_webhooks.adapters.http.views import StatusEndpoints, StatusViews

log = logging.getLogger("postflow_webhooks.http")

Lifespan = Callable[[Starlette], AbstractAsyncContextManager[None]]


class ReceiverApp(Starlette):
    """The Starlette app, with ``POST /frameio-webhook`` answered before its middleware.

    The webhook endpoint is the one under load and needs none of the
    middleware: it is public anyway and answers its own errors.
    """

    def __init__(self, webhook: ASGIApp, **options: Any) -> None:
        super().__init__(**options)
        self.webhook = webhook

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Send webhook deliveries straight to the endpoint, everything else to Starlette."""
        if scope["type"] == "http" and scope["path"] == WEBHOOK_PATH and scope["method"] == "POST":
            scope["app"] = self
            await self.webhook(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def build_http_app(
    receiver: WebhookReceiver,
    views: StatusViews,
    *,
    signature_required: bool,
    lifespan: Lifespan | None = None,
    public_status: bool = False,
) -> ReceiverApp:
    """The receiver's Starlette app; ``lifespan`` opens and closes the resources.

    Unless ``public_status``, requests that came through the tunnel reach only
    the webhook endpoint and a bare ``/health`` (``public.py``).
    """
    endpoints = StatusEndpoints(views, signature_required, public_status=public_status)
    routes = [
        Route(WEBHOOK_PATH, receiver, methods=["POST"]),
        Route(WEBHOOK_PATH, endpoints.describe_webhook, methods=["GET"]),
        Route("/health", endpoints.health, methods=["GET"]),
        Route("/webhook-status", endpoints.webhook_status, methods=["GET"]),
        Route("/uploads", endpoints.uploads, methods=["GET"]),
        Route("/uploads/{file_id:str}", endpoints.upload, methods=["GET"]),
    ]
    handlers: dict[Any, Any] = {kind: _refused for kind in ANSWERED}
    handlers[HTTPException] = _http_error
    handlers[Exception] = _unexpected
    return ReceiverApp(
        receiver,
        routes=routes,
        exception_handlers=handlers,
        lifespan=lifespan,
        middleware=[Middleware(PublicAccessGuard, enabled=not public_status)],
    )


async def _refused(request: Request, exc: Exception) -> Response:
    answer = refusal(exc)
    if answer is None:
        return await _unexpected(request, exc)
    return JSONResponse(answer[1], status_code=answer[0])


async def _http_error(request: Request, exc: HTTPException) -> Response:
    return JSONResponse(
        {"error": "http_error", "detail": exc.detail},
        status_code=exc.status_code,
        headers=exc.headers,
    )


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return JSONResponse(UNEXPECTED, status_code=500)
