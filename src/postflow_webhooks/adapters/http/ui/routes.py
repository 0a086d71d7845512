"""The status page's routes: the page, its two assets, its JSON, and the sign-in form.

Everything the page needs ships in the package (``static/``); the answers
carry a Content-Security-Policy that allows nothing from elsewhere. The page
only reads: its JSON comes from a ``PageViews`` object the composition root
provides. ``/ui/login`` exists for requests through the tunnel (see
``public.py``): it checks the status token and sets a cookie derived from it.
"""

from __future__ import annotations

import html
from importlib import resources
from typing import Any, Protocol
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from postflow_webhooks.adapters.http.errors import BadQueryError, BodyTooLargeError
from postflow_webhooks.adapters.http.public import COOKIE_NAME, LOGIN_PATH, StatusToken
from postflow_webhooks.adapters.http.views import MAX_OFFSET, int_param, parse_status
from postflow_webhooks.domain.statuses import PostflowStatus

ASSETS = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
}
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-cache",
}
MAX_PAGE = 200
MAX_SEARCH = 200
MAX_LOGIN_BODY = 4096
COOKIE_SECONDS = 30 * 24 * 3600


class PageViews(Protocol):
    """What the page shows, assembled by the application."""

    async def overview(self) -> dict[str, Any]:
        """The receiver at a glance: health, backlog, chart, tunnel, Frame.io, Discord."""
        ...

    async def files(
        self, status: PostflowStatus | None, search: str | None, offset: int, limit: int
    ) -> dict[str, Any]:
        """A page of tracked files, newest change first."""
        ...

    async def file(self, file_id: str) -> dict[str, Any] | None:
        """One file's timeline, or ``None`` when it is unknown."""
        ...


def _load(name: str) -> bytes:
    return (resources.files(__package__) / "static" / name).read_bytes()


def login_form(message: str | None = None) -> bytes:
    """The sign-in page for the status token (no script, no outside asset)."""
    note = f'<p role="alert">{html.escape(message)}</p>' if message else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>Sign in: PostFlow webhooks</title><link rel="icon" href="data:,">
<link rel="stylesheet" href="/ui/static/app.css"></head>
<body><main><h1>PostFlow webhooks</h1>{note}
<form method="post" action="{LOGIN_PATH}">
<label for="token">Status access token</label>
<input id="token" name="token" type="password" autocomplete="current-password" required>
<button type="submit">Sign in</button></form></main></body></html>
""".encode()


class StatusPage:
    """The page's endpoints, over ``PageViews``; ``token`` is the configured access token."""

    def __init__(self, views: PageViews, token: StatusToken | None = None) -> None:
        self._views = views
        self._token = token
        self._assets = {name: _load(name) for name in ASSETS}

    async def index(self, request: Request) -> Response:
        """The page."""
        return Response(
            self._assets["index.html"], media_type=ASSETS["index.html"], headers=HEADERS
        )

    async def asset(self, request: Request) -> Response:
        """``app.js`` or ``app.css``; 404 for anything else."""
        name = request.path_params["name"]
        if name not in ASSETS or name == "index.html":
            return JSONResponse(
                {"error": "not_found", "detail": f"no asset {name!r}"}, status_code=404
            )
        return Response(self._assets[name], media_type=ASSETS[name], headers=HEADERS)

    async def overview(self, request: Request) -> Response:
        """The receiver at a glance, as JSON."""
        return JSONResponse(await self._views.overview(), headers=HEADERS)

    async def files(self, request: Request) -> Response:
        """A page of tracked files: ``status``, ``q`` (name or id), ``offset``, ``limit``."""
        params = request.query_params
        status = parse_status(params.get("status"))
        search = (params.get("q") or "").strip() or None
        if search is not None and len(search) > MAX_SEARCH:
            raise BadQueryError("bad_q", f"q must be at most {MAX_SEARCH} characters")
        offset = int_param(params.get("offset"), "offset", 0, 0, MAX_OFFSET)
        limit = int_param(params.get("limit"), "limit", 50, 1, MAX_PAGE)
        page = await self._views.files(status, search, offset, limit)
        return JSONResponse(page, headers=HEADERS)

    async def file(self, request: Request) -> Response:
        """One file's timeline, or 404."""
        file_id = request.path_params["file_id"]
        found = await self._views.file(file_id)
        if found is None:
            return JSONResponse(
                {"error": "not_found", "detail": f"no tracked file with id {file_id!r}"},
                status_code=404,
            )
        return JSONResponse(found, headers=HEADERS)

    async def login_page(self, request: Request) -> Response:
        """The sign-in form."""
        return Response(login_form(), media_type=ASSETS["index.html"], headers=HEADERS)

    async def login(self, request: Request) -> Response:
        """Check the token; on success set the cookie and go to the page."""
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_LOGIN_BODY:
                raise BodyTooLargeError("too_large", f"the form is over {MAX_LOGIN_BODY} bytes")
        offered = parse_qs(body.decode("utf-8", "replace")).get("token", [""])[0]
        if self._token is None or not self._token.matches(offered):
            page = login_form("That is not the status access token.")
            return Response(page, status_code=401, media_type=ASSETS["index.html"], headers=HEADERS)
        answer = RedirectResponse("/", status_code=303)
        answer.set_cookie(
            COOKIE_NAME,
            self._token.cookie_value,
            max_age=COOKIE_SECONDS,
            path="/",
            secure=True,
            httponly=True,
            samesite="strict",
        )
        return answer


def page_routes(page: StatusPage) -> list[Route]:
    """The page's routes."""
    return [
        Route("/", page.index, methods=["GET"]),
        Route("/ui/static/{name:str}", page.asset, methods=["GET"]),
        Route("/ui/api/overview", page.overview, methods=["GET"]),
        Route("/ui/api/files", page.files, methods=["GET"]),
        Route("/ui/api/files/{file_id:str}", page.file, methods=["GET"]),
        Route(LOGIN_PATH, page.login_page, methods=["GET"]),
        Route(LOGIN_PATH, page.login, methods=["POST"]),
    ]
