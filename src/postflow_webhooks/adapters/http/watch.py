"""``/livez``, ``/readyz`` and ``/metrics``: for orchestrators and Prometheus.

``/livez`` answers as long as the event loop does. ``/readyz`` answers 200
when the receiver can accept and apply deliveries (its database can be
written and the worker runs), else 503 with the reasons. ``/metrics`` is the
Prometheus text format, rendered by the application.
"""

from __future__ import annotations

from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


class WatchViews(Protocol):
    """Readiness and metrics, assembled by the application."""

    async def readiness(self) -> tuple[bool, dict[str, Any]]:
        """Whether deliveries can be accepted and applied now, and why not."""
        ...

    async def metrics(self) -> tuple[bytes, str]:
        """The exposition and its content type."""
        ...


class WatchEndpoints:
    """The endpoints over ``WatchViews``."""

    def __init__(self, views: WatchViews) -> None:
        self._views = views

    async def livez(self, request: Request) -> Response:
        """200 while the process answers."""
        return JSONResponse({"status": "alive"})

    async def readyz(self, request: Request) -> Response:
        """200 when deliveries can be accepted and applied, else 503 with the reasons."""
        ready, body = await self._views.readiness()
        return JSONResponse(body, status_code=200 if ready else 503)

    async def metrics(self, request: Request) -> Response:
        """Prometheus' text format."""
        body, content_type = await self._views.metrics()
        return Response(body, headers={"content-type": content_type})


def watch_routes(views: WatchViews) -> list[Route]:
    """The routes of ``/livez``, ``/readyz`` and ``/metrics``."""
    endpoints = WatchEndpoints(views)
    return [
        Route("/livez", endpoints.livez, methods=["GET"]),
        Route("/readyz", endpoints.readyz, methods=["GET"]),
        Route("/metrics", endpoints.metrics, methods=["GET"]),
    ]
