"""The baseline: a bare Starlette endpoint that reads the body and answers 202."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


async def receive(request: Request) -> Response:
    """Read the body, answer 202: the least any receiver must do."""
    await request.body()
    return JSONResponse({"accepted": True}, status_code=202)


async def health(request: Request) -> Response:
    """Answer 200 with an empty backlog, like the receiver's /health."""
    return JSONResponse({"backlog": 0})


app = Starlette(
    routes=[
        Route("/frameio-webhook", receive, methods=["POST"]),
        Route("/health", health, methods=["GET"]),
    ]
)
