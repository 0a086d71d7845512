"""Requests that came through the Cloudflare tunnel see only what Frame.io needs.

cloudflared connects from the same machine, so the client address says
nothing; the headers Cloudflare's edge adds (``Cf-Ray``, ``Cf-Connecting-Ip``)
do, and a visitor cannot remove them. Through the tunnel:

- the webhook endpoint and a bare ``/health`` always answer;
- with ``public_status`` off, nothing else does (404);
- with ``public_status`` on, the status page (``/`` and ``/ui/...``) and the
  other status paths (the JSON endpoints, the full ``/health``, ``/metrics``)
  answer only to a request carrying the status token (the cookie ``/ui/login``
  sets, or ``Authorization: Bearer <token>``); without a configured token they
  answer 403 naming ``POSTFLOW_STATUS_TOKEN``.

Local requests (no edge headers) see everything, without a token. Tokens are
compared in constant time and never logged.
"""

from __future__ import annotations

import hashlib
import hmac
import json

from starlette.types import ASGIApp, Receive, Scope, Send

from postflow_webhooks.domain.endpoint import WEBHOOK_PATH

EDGE_HEADERS = (b"cf-ray", b"cf-connecting-ip")
PUBLIC_PATHS = frozenset({WEBHOOK_PATH, "/health"})
LOGIN_PATH = "/ui/login"
COOKIE_NAME = "postflow_status"
# Set on the scope of a tunnelled request that showed the status token.
STATUS_ACCESS = "postflow.status_access"


def came_through_tunnel(scope: Scope) -> bool:
    """True when Cloudflare's edge forwarded this request."""
    return any(name in EDGE_HEADERS for name, _ in scope.get("headers", ()))


def may_see_status(scope: Scope) -> bool:
    """True for local requests, and for tunnelled ones the guard let see the full status."""
    return not came_through_tunnel(scope) or bool(scope.get(STATUS_ACCESS))


def is_page(path: str) -> bool:
    """True for the status page and its assets and data."""
    return path == "/" or path.startswith("/ui/")


class StatusToken:
    """The configured access token; the cookie holds a value derived from it, not the token."""

    def __init__(self, token: str) -> None:
        self._token = token.encode("utf-8")
        self.cookie_value = hmac.new(
            self._token, b"postflow-status-cookie", hashlib.sha256
        ).hexdigest()

    def __repr__(self) -> str:
        return "StatusToken(<hidden>)"

    def matches(self, offered: str) -> bool:
        """True when ``offered`` is the token (constant time)."""
        return hmac.compare_digest(offered.encode("utf-8"), self._token)

    def presented(self, scope: Scope) -> bool:
        """True when the request carries the token (header) or the login cookie."""
        for name, value in scope.get("headers", ()):
            if name == b"authorization":
                scheme, _, offered = value.decode("latin-1").partition(" ")
                if scheme.lower() == "bearer" and self.matches(offered.strip()):
                    return True
            elif name == b"cookie":
                for part in value.decode("latin-1").split(";"):
                    key, _, cookie = part.strip().partition("=")
                    if key == COOKIE_NAME and hmac.compare_digest(
                        cookie.encode("latin-1"), self.cookie_value.encode("ascii")
                    ):
                        return True
        return False


Refusal = tuple[int, str, dict[str, str]]


class PublicAccessGuard:
    """ASGI middleware: what a tunnelled request may reach (see the module's docstring)."""

    def __init__(
        self, app: ASGIApp, *, public_status: bool = False, token: StatusToken | None = None
    ) -> None:
        self.app = app
        self.public_status = public_status
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass local requests and allowed tunnelled ones through; refuse the rest."""
        if (
            scope["type"] != "http"
            or scope["path"] == WEBHOOK_PATH
            or not came_through_tunnel(scope)
        ):
            await self.app(scope, receive, send)
            return
        refused = self._refusal(scope)
        if refused is None:
            await self.app(scope, receive, send)
            return
        status, detail, extra = refused
        body = json.dumps({"error": extra.pop("error"), "detail": detail}).encode()
        headers = [(b"content-type", b"application/json")]
        headers += [(k.encode(), v.encode()) for k, v in extra.items()]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def _refusal(self, scope: Scope) -> Refusal | None:
        path = scope["path"]
        token = self.token
        has_token = token is not None and token.presented(scope)
        if self.public_status and has_token:
            scope[STATUS_ACCESS] = True
        if path in PUBLIC_PATHS:
            return None
        if not self.public_status:
            return 404, f"only {WEBHOOK_PATH} is public", {"error": "not_found"}
        if token is None:
            return (
                403,
                "the status paths are not served through the tunnel without an access token: "
                "set POSTFLOW_STATUS_TOKEN",
                {"error": "status_token_not_configured"},
            )
        if has_token or path == LOGIN_PATH:
            return None
        if path == "/" and scope["method"] == "GET":
            return (
                303,
                f"sign in at {LOGIN_PATH}",
                {"error": "status_token_required", "location": LOGIN_PATH},
            )
        return (
            401,
            "send the status token: Authorization: Bearer <POSTFLOW_STATUS_TOKEN>, "
            f"or sign in at {LOGIN_PATH}",
            {"error": "status_token_required", "www-authenticate": "Bearer"},
        )
