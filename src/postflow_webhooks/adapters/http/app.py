"""Builds the Starlette application: routes, and errors mapped to answers once."""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from postflow_webhooks.adapters.http.errors import RequestRejectedError
from postflow_webhooks.adapters.http.public import PublicAccessGuard
from postflow_webhooks.adapters.http.receiver import WebhookReceiver
from postflow_webhooks.adapters.http.signature import SignatureError
from postflow_webhooks.adapters.http.views import StatusEndpoints, StatusViews
from postflow_webhooks.domain.errors import PayloadError, StorageError

log = logging.getLogger("postflow_webhooks.http")

Lifespan = Callable[[Starlette], AbstractAsyncContextManager[None]]


def build_http_app(
    receiver: WebhookReceiver,
    views: StatusViews,
    *,
    signature_required: bool,
    lifespan: Lifespan | None = None,
    public_status: bool = False,
) -> Starlette:
    """The receiver's Starlette app; ``lifespan`` opens and closes the resources.

    Unless ``public_status``, requests that came through the tunnel reach only
    the webhook endpoint and a bare ``/health`` (``public.py``).
    """
    endpoints = StatusEndpoints(views, signature_required, public_status=public_status)
    routes = [
        Route("/frameio-webhook", receiver.receive, methods=["POST"]),
        Route("/frameio-webhook", endpoints.describe_webhook, methods=["GET"]),
        Route("/health", endpoints.health, methods=["GET"]),
        Route("/webhook-status", endpoints.webhook_status, methods=["GET"]),
        Route("/uploads", endpoints.uploads, methods=["GET"]),
        Route("/uploads/{file_id:str}", endpoints.upload, methods=["GET"]),
    ]
    handlers = {
        SignatureError: _signature_error,
        RequestRejectedError: _rejected,
        PayloadError: _payload_error,
        StorageError: _storage_error,
        HTTPException: _http_error,
        Exception: _unexpected,
    }
    return Starlette(
        routes=routes,
        exception_handlers=handlers,  # type: ignore[arg-type]
        lifespan=lifespan,
        middleware=[Middleware(PublicAccessGuard, enabled=not public_status)],
    )


async def _signature_error(request: Request, exc: SignatureError) -> Response:
    return JSONResponse(
        {"error": "invalid_signature", "reason": exc.reason, "detail": exc.detail},
        status_code=401,
    )


async def _rejected(request: Request, exc: RequestRejectedError) -> Response:
    return JSONResponse({"error": exc.reason, "detail": exc.detail}, status_code=exc.status_code)


async def _payload_error(request: Request, exc: PayloadError) -> Response:
    problems = [{"path": p.path, "message": p.message} for p in exc.problems]
    return JSONResponse({"error": "invalid_payload", "problems": problems}, status_code=422)


async def _storage_error(request: Request, exc: StorageError) -> Response:
    log.error("storage unavailable: %s", exc)
    return JSONResponse(
        {"error": "storage_unavailable", "detail": "the delivery was not stored; retry later"},
        status_code=503,
    )


async def _http_error(request: Request, exc: HTTPException) -> Response:
    return JSONResponse(
        {"error": "http_error", "detail": exc.detail},
        status_code=exc.status_code,
        headers=exc.headers,
    )


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return JSONResponse({"error": "internal", "detail": "unexpected error"}, status_code=500)
