"""Builds the Starlette application: the routes, and every refusal answered in one place."""

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

from postflow_webhooks.adapters.http.answers import ANSWERED, UNEXPECTED, refusal, refusal_reason
from postflow_webhooks.adapters.http.metering import RequestCounts, RequestMeter
from postflow_webhooks.adapters.http.public import PublicAccessGuard, StatusToken
from postflow_webhooks.adapters.http.receiver import WebhookReceiver
from postflow_webhooks.adapters.http.ui import PageViews, StatusPage, page_routes
from postflow_webhooks.adapters.http.views import StatusEndpoints, StatusViews
from postflow_webhooks.adapters.http.watch import WatchViews, watch_routes
from postflow_webhooks.domain.endpoint import WEBHOOK_PATH

log = logging.getLogger("postflow_webhooks.http")

Lifespan = Callable[[Starlette], AbstractAsyncContextManager[None]]


def build_http_app(
    receiver: WebhookReceiver,
    views: StatusViews,
    *,
    signature_required: Callable[[], bool],
    lifespan: Lifespan | None = None,
    public_status: bool = False,
    watch: WatchViews | None = None,
    page: PageViews | None = None,
    counts: RequestCounts | None = None,
    status_token: str | None = None,
) -> Starlette:
    """The receiver's Starlette app; ``lifespan`` opens and closes the resources.

    Unless ``public_status``, requests that came through the tunnel reach only
    the webhook endpoint and a bare ``/health``; the status page and, once a
    ``status_token`` is set, every status path need that token (``public.py``).
    ``watch`` adds ``/livez``, ``/readyz`` and ``/metrics``; ``page`` the status
    page; ``counts`` counts every request (``metering.py``).
    """
    endpoints = StatusEndpoints(views, signature_required)
    routes = [
        Route(WEBHOOK_PATH, receiver, methods=["POST"]),
        Route(WEBHOOK_PATH, endpoints.describe_webhook, methods=["GET"]),
        Route("/health", endpoints.health, methods=["GET"]),
        Route("/webhook-status", endpoints.webhook_status, methods=["GET"]),
        Route("/uploads", endpoints.uploads, methods=["GET"]),
        Route("/uploads/{file_id:str}", endpoints.upload, methods=["GET"]),
    ]
    token = StatusToken(status_token) if status_token else None
    if watch is not None:
        routes += watch_routes(watch)
    if page is not None:
        routes += page_routes(StatusPage(page, token))
    middleware = [Middleware(PublicAccessGuard, public_status=public_status, token=token)]
    if counts is not None:
        middleware.insert(0, Middleware(RequestMeter, counts=counts))
    handlers: dict[Any, Any] = {kind: _refused for kind in ANSWERED}
    handlers[HTTPException] = _http_error
    handlers[Exception] = _unexpected
    return Starlette(
        routes=routes,
        exception_handlers=handlers,
        lifespan=lifespan,
        middleware=middleware,
    )


async def _refused(request: Request, exc: Exception) -> Response:
    status, body = refusal(exc)
    count = getattr(request.app.state, "count_refusal", None)
    reason = refusal_reason(exc)
    # The webhook endpoint counts its own refusals; the other paths' are counted here.
    if count is not None and reason is not None and request.url.path != WEBHOOK_PATH:
        count(reason)
    return JSONResponse(body, status_code=status)


async def _http_error(request: Request, exc: HTTPException) -> Response:
    return JSONResponse(
        {"error": "http_error", "detail": exc.detail},
        status_code=exc.status_code,
        headers=exc.headers,
    )


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return JSONResponse(UNEXPECTED, status_code=500)
