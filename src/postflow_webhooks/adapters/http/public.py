"""Requests that came through the Cloudflare tunnel see only what Frame.io needs.

cloudflared connects from the same machine, so the client address says
nothing; the headers Cloudflare's edge adds (``Cf-Ray``, ``Cf-Connecting-Ip``)
do, and a visitor cannot remove them. Through the tunnel only the webhook
endpoint and a bare ``/health`` answer; the tracked files, stats and
dead letters stay on the local port.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Receive, Scope, Send

from postflow_webhooks.domain.endpoint import WEBHOOK_PATH

EDGE_HEADERS = (b"cf-ray", b"cf-connecting-ip")
PUBLIC_PATHS = frozenset({WEBHOOK_PATH, "/health"})


def came_through_tunnel(scope: Scope) -> bool:
    """True when Cloudflare's edge forwarded this request."""
    return any(name in EDGE_HEADERS for name, _ in scope.get("headers", ()))


class PublicAccessGuard:
    """ASGI middleware: answer 404 to tunnelled requests for anything but the public paths."""

    def __init__(self, app: ASGIApp, *, enabled: bool = True) -> None:
        self.app = app
        self.enabled = enabled

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass local requests and public paths through; refuse the rest."""
        if (
            self.enabled
            and scope["type"] == "http"
            and scope["path"] not in PUBLIC_PATHS
            and came_through_tunnel(scope)
        ):
            body = json.dumps(
                {"error": "not_found", "detail": f"only {WEBHOOK_PATH} is public"}
            ).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 404,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)
