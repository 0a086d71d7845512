"""A real local HTTP server that answers like Adobe IMS and the Frame.io V4 API.

Served by uvicorn on 127.0.0.1 (a free port) in a background thread. It issues
expiring bearer tokens (client credentials, authorization code, refresh token),
redirects the user sign-in, serves files, metadata, status and comments from
in-memory state that tests edit, manages workspace webhooks, and sends signed
V4 deliveries (``v0`` scheme) to the registered webhook URL.

Pagination of list calls (the shape this fake chooses, modelled on V4):
``{"data": [...], "links": {"next": "/v4/...?after=<cursor>&page_size=N" | null},
"total_count": N}``; ``after`` is an opaque cursor, ``page_size`` defaults to
``FakeFrameio.page_size``.

Knobs: ``fail_next(n, status)`` (5xx bursts), ``rate_limit_next(n, retry_after)``
(429 with ``Retry-After``), ``expire_tokens()`` (401 until a new token),
``revoke_refresh_tokens()``, ``token_ttl``. Failures hit ``/v4`` calls only.

The studio's side: projects and users have names (``projects``, ``users``;
a user is served by id only with the ``api-version: experimental`` header,
as Frame.io documents it), the account's review field has a name, an id
(``fd-status``) and options (``review_field_name``, ``review_options``),
comments may be replies (``parent_id``) and be completed or deleted.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import socket
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

import attrs
import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from postflow_webhooks.adapters.frameio.config import FrameioConfig

Handler = Callable[[Request], Any]


class ServerThread:
    """Serve an ASGI app with uvicorn on 127.0.0.1:<free port> in a daemon thread."""

    def __init__(self, app: Any) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port: int = self._sock.getsockname()[1]
        config = uvicorn.Config(app, log_level="warning", lifespan="off", http="h11", ws="none")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:54321``."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start serving; return once the server accepts connections."""
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("fake server did not start")
            time.sleep(0.005)

    def stop(self) -> None:
        """Stop serving and wait for the thread."""
        self._server.should_exit = True
        self._thread.join(10)
        self._sock.close()


@attrs.define
class FakeFile:
    """A file in the fake: what the file, metadata and status calls answer."""

    id: str
    name: str
    status: str = "uploaded"
    status_field: str | None = None
    project_id: str = "project-1"


@attrs.define
class Recorded:
    """One request the fake answered."""

    method: str
    path: str
    status: int


class FakeFrameio:
    """Adobe IMS plus the V4 calls the adapter uses, with knobs for failures."""

    def __init__(
        self,
        *,
        client_id: str = "fake-client-id",
        client_secret: str = "fake-client-secret-do-not-log",
        account_id: str = "acct-0001",
        workspace_id: str = "ws-0001",
        token_ttl: float = 3600.0,
        page_size: int = 50,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.account_id = account_id
        self.workspace_id = workspace_id
        self.token_ttl = token_ttl
        self.page_size = page_size
        self.status_field_name = "Status"
        self.review_options = ["Needs Review", "In Progress", "Approved"]
        self.projects: dict[str, str] = {"project-1": "Project One"}
        self.users: dict[str, str] = {"user-9": "Rita Reviewer"}
        self.files: dict[str, FakeFile] = {}
        self.comments: dict[str, dict[str, Any]] = {}
        self.webhooks: dict[str, dict[str, Any]] = {}
        self.requests: list[Recorded] = []
        self.grants: list[str] = []
        self.deliveries: list[httpx.Response] = []
        self._tokens: dict[str, float] = {}
        self._refresh: set[str] = set()
        self._codes: set[str] = set()
        self._failures: list[tuple[int, float | None]] = []
        self._lock = threading.Lock()
        self._server = ServerThread(self._app())

    # -- lifecycle ------------------------------------------------------
    def start(self) -> FakeFrameio:
        """Start the server."""
        self._server.start()
        return self

    def stop(self) -> None:
        """Stop the server."""
        self._server.stop()

    def __enter__(self) -> FakeFrameio:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The fake's base URL (both IMS and the API live there)."""
        return self._server.url

    def receiver_settings(self) -> dict[str, Any]:
        """The receiver settings (``Settings`` keywords) that point its Frame.io API here."""
        return {
            "frameio_client_id": self.client_id,
            "frameio_client_secret": self.client_secret,
            "frameio_account_id": self.account_id,
            "frameio_workspace_id": self.workspace_id,
            "frameio_api_base": self.url,
            "frameio_ims_token_url": f"{self.url}/ims/token/v3",
        }

    def receiver_env(self) -> dict[str, str]:
        """The same settings as ``POSTFLOW_*`` environment variables, for a receiver process."""
        return {f"POSTFLOW_{key.upper()}": value for key, value in self.receiver_settings().items()}

    def config(self, data_dir: Path, **overrides: Any) -> FrameioConfig:
        """A ``FrameioConfig`` pointing at this fake, caches under ``data_dir``."""
        settings: dict[str, Any] = {
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "account_id": self.account_id,
            "workspace_id": self.workspace_id,
            "api_base": self.url,
            "ims_token_url": f"{self.url}/ims/token/v3",
            "ims_authorize_url": f"{self.url}/ims/authorize/v2",
            "token_cache_path": data_dir / "frameio_token.json",
            "webhook_secret_path": data_dir / "frameio_webhook_secret",
            "connect_timeout": 2.0,
            "read_timeout": 5.0,
        }
        settings.update(overrides)
        return FrameioConfig(**settings)

    # -- state the tests edit --------------------------------------------
    def add_file(self, name: str = "clip.mov", *, file_id: str | None = None, **fields: Any) -> str:
        """Create a file; returns its id."""
        fid = file_id or str(uuid.uuid4())
        with self._lock:
            self.files[fid] = FakeFile(id=fid, name=name, **fields)
        return fid

    def set_file_status(self, file_id: str, status: str) -> None:
        """Set the file's V4 status (``created``, ``uploaded``, ``transcoded``)."""
        with self._lock:
            self.files[file_id].status = status

    def set_status_field(self, file_id: str, value: str | None) -> None:
        """Set (or clear) the file's ``Status`` select metadata field."""
        with self._lock:
            self.files[file_id].status_field = value

    def remove_file(self, file_id: str) -> None:
        """Delete a file: the API answers 404 for it from now on."""
        with self._lock:
            self.files.pop(file_id, None)

    def add_comment(
        self, file_id: str, text: str, author: str = "Reviewer", *, parent_id: str | None = None
    ) -> str:
        """Add a comment on a file (a reply when ``parent_id`` is given); returns its id."""
        cid = str(uuid.uuid4())
        owner = {"id": "user-9", "name": author, "email": "reviewer@example.com"}
        with self._lock:
            self.comments[cid] = {
                "id": cid,
                "text": text,
                "file_id": file_id,
                "owner": owner,
                "parent_id": parent_id,
                "completed_at": None,
            }
        return cid

    def complete_comment(self, comment_id: str, done: bool = True) -> None:
        """Mark a comment completed (or not)."""
        with self._lock:
            self.comments[comment_id]["completed_at"] = "2026-01-01T00:00:00Z" if done else None

    def edit_comment(self, comment_id: str, text: str) -> None:
        """Change a comment's text."""
        with self._lock:
            self.comments[comment_id]["text"] = text

    def remove_comment(self, comment_id: str) -> None:
        """Delete a comment: the API answers 404 for it from now on."""
        with self._lock:
            self.comments.pop(comment_id, None)

    def rename_file(self, file_id: str, name: str) -> None:
        """Rename a file."""
        with self._lock:
            self.files[file_id].name = name

    # -- knobs -----------------------------------------------------------
    def fail_next(self, count: int, status: int = 503) -> None:
        """The next ``count`` /v4 calls answer ``status``."""
        with self._lock:
            self._failures.extend([(status, None)] * count)

    def rate_limit_next(self, count: int, retry_after: float = 2.0) -> None:
        """The next ``count`` /v4 calls answer 429 with ``Retry-After``."""
        with self._lock:
            self._failures.extend([(429, retry_after)] * count)

    def recover(self) -> None:
        """Cancel pending failures."""
        with self._lock:
            self._failures.clear()

    def expire_tokens(self) -> None:
        """Every access token issued so far is now expired (401)."""
        with self._lock:
            self._tokens = dict.fromkeys(self._tokens, 0.0)

    def revoke_refresh_tokens(self) -> None:
        """Refresh tokens issued so far are refused (``invalid_grant``)."""
        with self._lock:
            self._refresh.clear()

    def calls(self, method: str, fragment: str = "") -> list[Recorded]:
        """Answered /v4 requests of ``method`` whose path contains ``fragment``."""
        return [r for r in self.requests if r.method == method and fragment in r.path]

    # -- deliveries ------------------------------------------------------
    def payload(
        self,
        event_type: str,
        resource_id: str,
        resource_type: str = "file",
        *,
        user_id: str = "user-9",
    ) -> bytes:
        """A V4 IDs-only delivery body; the project is the file's (or the comment's file's)."""
        with self._lock:
            file_id = resource_id
            if resource_type == "comment" and resource_id in self.comments:
                file_id = self.comments[resource_id]["file_id"]
            found = self.files.get(file_id)
        body = {
            "account": {"id": self.account_id},
            "project": {"id": found.project_id if found else "project-1"},
            "resource": {"id": resource_id, "type": resource_type},
            "type": event_type,
            "user": {"id": user_id},
            "workspace": {"id": self.workspace_id},
        }
        return json.dumps(body).encode()

    @staticmethod
    def sign(secret: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
        """The headers Frame.io sends with a delivery signed by ``secret``."""
        ts = str(int(time.time()) if timestamp is None else timestamp)
        digest = hmac.new(secret.encode(), b"v0:" + ts.encode() + b":" + body, hashlib.sha256)
        return {
            "Content-Type": "application/json",
            "User-Agent": "Frame.io V4 API",
            "X-Frameio-Request-Timestamp": ts,
            "X-Frameio-Signature": f"v0={digest.hexdigest()}",
        }

    async def deliver(
        self,
        event_type: str,
        resource_id: str,
        *,
        resource_type: str = "file",
        resolve: Callable[[str], str] | None = None,
        user_id: str = "user-9",
    ) -> httpx.Response | None:
        """POST a signed delivery to every active webhook subscribed to ``event_type``.

        ``resolve`` maps a registered public URL to where it really is (the fake
        tunnel's local port), standing in for DNS.
        """
        with self._lock:
            targets = [
                dict(w) for w in self.webhooks.values() if w["active"] and event_type in w["events"]
            ]
        body = self.payload(event_type, resource_id, resource_type, user_id=user_id)
        answer = None
        async with httpx.AsyncClient(timeout=5.0) as http:
            for hook in targets:
                url = resolve(hook["url"]) if resolve else hook["url"]
                answer = await http.post(url, content=body, headers=self.sign(hook["secret"], body))
                self.deliveries.append(answer)
        return answer

    # -- the app ---------------------------------------------------------
    def _app(self) -> Starlette:
        acct = "/v4/accounts/{account_id}"
        routes = [
            Route("/ims/token/v3", self._token, methods=["POST"]),
            Route("/ims/authorize/v2", self._authorize, methods=["GET"]),
            Route(acct + "/files/{file_id}", self._api(self._file), methods=["GET"]),
            Route(acct + "/files/{file_id}/metadata", self._api(self._metadata), methods=["GET"]),
            Route(acct + "/files/{file_id}/status", self._api(self._status), methods=["GET"]),
            Route(acct + "/comments/{comment_id}", self._api(self._comment), methods=["GET"]),
            Route(acct + "/projects/{project_id}", self._api(self._project), methods=["GET"]),
            Route(acct + "/users/{user_id}", self._api(self._user), methods=["GET"]),
            Route(
                acct + "/metadata/field_definitions",
                self._api(self._field_definitions),
                methods=["GET"],
            ),
            Route(
                acct + "/workspaces/{workspace_id}/webhooks",
                self._api(self._webhooks),
                methods=["GET", "POST"],
            ),
            Route(
                acct + "/webhooks/{webhook_id}",
                self._api(self._webhook),
                methods=["GET", "PATCH", "DELETE"],
            ),
        ]
        return Starlette(routes=routes)

    def _api(self, handler: Handler) -> Handler:
        async def guarded(request: Request) -> Response:
            response = await self._gate(request) or await handler(request)
            with self._lock:
                self.requests.append(
                    Recorded(request.method, request.url.path, response.status_code)
                )
            return response

        return guarded

    async def _gate(self, request: Request) -> Response | None:
        with self._lock:
            failure = self._failures.pop(0) if self._failures else None
            auth = request.headers.get("authorization", "")
            expiry = (
                self._tokens.get(auth.removeprefix("Bearer "))
                if auth.startswith("Bearer ")
                else None
            )
        if failure is not None:
            status, retry_after = failure
            headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else {}
            return _error(status, "injected failure", headers=headers)
        if expiry is None or expiry <= time.monotonic():
            return _error(401, "invalid or expired token")
        if request.path_params.get("account_id") != self.account_id:
            return _error(404, "account not found")
        return None

    async def _token(self, request: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        grant = str(form.get("grant_type", ""))
        with self._lock:
            self.grants.append(grant)
        if (
            form.get("client_id") != self.client_id
            or form.get("client_secret") != self.client_secret
        ):
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        refresh: str | None = None
        with self._lock:
            if grant == "authorization_code":
                if str(form.get("code")) not in self._codes:
                    return JSONResponse({"error": "invalid_grant"}, status_code=400)
                self._codes.discard(str(form.get("code")))
                refresh = secrets.token_urlsafe(24)
            elif grant == "refresh_token":
                if str(form.get("refresh_token")) not in self._refresh:
                    return JSONResponse({"error": "invalid_grant"}, status_code=400)
                refresh = secrets.token_urlsafe(24)
            elif grant != "client_credentials":
                return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
            access = secrets.token_urlsafe(32)
            self._tokens[access] = time.monotonic() + self.token_ttl
            if refresh is not None:
                self._refresh.add(refresh)
        answer: dict[str, Any] = {
            "access_token": access,
            "token_type": "bearer",
            "expires_in": int(self.token_ttl),
        }
        if refresh is not None:
            answer["refresh_token"] = refresh
        return JSONResponse(answer)

    async def _authorize(self, request: Request) -> Response:
        query = request.query_params
        if query.get("client_id") != self.client_id or query.get("response_type") != "code":
            return _error(400, "bad authorize request")
        code = secrets.token_urlsafe(16)
        with self._lock:
            self._codes.add(code)
        target = (
            f"{query['redirect_uri']}?{urlencode({'code': code, 'state': query.get('state', '')})}"
        )
        return RedirectResponse(target, status_code=302)

    def _find_file(self, request: Request) -> FakeFile | None:
        with self._lock:
            return self.files.get(request.path_params["file_id"])

    async def _file(self, request: Request) -> Response:
        found = self._find_file(request)
        if found is None:
            return _error(404, "file not found")
        data: dict[str, Any] = {
            "id": found.id,
            "name": found.name,
            "status": found.status,
            "type": "file",
            "project_id": found.project_id,
            "view_url": f"https://next.frame.io/project/{found.project_id}/view/{found.id}",
        }
        if "media_links.original" in request.query_params.get("include", ""):
            original = f"https://assets.example.com/{found.id}/original.mov"
            data["media_links"] = {"original": {"download_url": original}}
        return JSONResponse({"data": data})

    async def _metadata(self, request: Request) -> Response:
        found = self._find_file(request)
        if found is None:
            return _error(404, "file not found")
        value = None
        if found.status_field is not None:
            value = [
                {"id": f"opt-{found.status_field.lower()}", "display_name": found.status_field}
            ]
        items = [
            {
                "field_definition_id": "fd-notes",
                "field_definition_name": "Notes",
                "field_type": "text",
                "value": "x",
            },
            {
                "field_definition_id": "fd-status",
                "field_definition_name": self.status_field_name,
                "field_type": "select",
                "value": value,
            },
        ]
        if request.query_params.get("show_null") != "true":
            items = [item for item in items if item["value"] is not None]
        return JSONResponse({"data": {"file_id": found.id, "metadata": items}})

    async def _status(self, request: Request) -> Response:
        found = self._find_file(request)
        if found is None:
            return _error(404, "file not found")
        return JSONResponse({"data": {"id": found.id, "status": found.status}})

    async def _comment(self, request: Request) -> Response:
        with self._lock:
            found = self.comments.get(request.path_params["comment_id"])
        if found is None:
            return _error(404, "comment not found")
        return JSONResponse({"data": found})

    async def _project(self, request: Request) -> Response:
        with self._lock:
            name = self.projects.get(request.path_params["project_id"])
        if name is None:
            return _error(404, "project not found")
        return JSONResponse({"data": {"id": request.path_params["project_id"], "name": name}})

    async def _user(self, request: Request) -> Response:
        if request.headers.get("api-version") != "experimental":
            return _error(404, "not found")
        with self._lock:
            name = self.users.get(request.path_params["user_id"])
        if name is None:
            return _error(404, "user not found")
        user = {"id": request.path_params["user_id"], "name": name, "email": "x@example.com"}
        return JSONResponse({"data": {"role": "reviewer", "user": user}})

    async def _field_definitions(self, request: Request) -> Response:
        options = [{"id": f"opt-{i}", "display_name": n} for i, n in enumerate(self.review_options)]
        fields = [
            {"id": "fd-notes", "name": "Notes", "field_type": "text", "field_configuration": {}},
            {
                "id": "fd-status",
                "name": self.status_field_name,
                "field_type": "select",
                "field_configuration": {"options": options, "enable_add_new": False},
            },
        ]
        return JSONResponse({"data": fields, "links": {"next": None}, "total_count": len(fields)})

    async def _webhooks(self, request: Request) -> Response:
        if request.path_params["workspace_id"] != self.workspace_id:
            return _error(404, "workspace not found")
        if request.method == "POST":
            return await self._create_webhook(request)
        size = int(request.query_params.get("page_size", self.page_size))
        start = _decode_cursor(request.query_params.get("after"))
        with self._lock:
            listed = [_public(w) for w in self.webhooks.values()]
        page = listed[start : start + size]
        following = None
        if start + size < len(listed):
            cursor = _encode_cursor(start + size)
            following = f"{request.url.path}?{urlencode({'after': cursor, 'page_size': size})}"
        return JSONResponse(
            {"data": page, "links": {"next": following}, "total_count": len(listed)}
        )

    async def _create_webhook(self, request: Request) -> Response:
        data = (await request.json()).get("data") or {}
        if not data.get("name") or not data.get("url") or not data.get("events"):
            return _error(422, "name, url and events are required")
        hook = {
            "id": str(uuid.uuid4()),
            "name": data["name"],
            "url": data["url"],
            "events": list(data["events"]),
            "active": True,
            "workspace_id": self.workspace_id,
            "secret": secrets.token_urlsafe(32),
        }
        with self._lock:
            self.webhooks[hook["id"]] = hook
        return JSONResponse({"data": hook}, status_code=201)

    async def _webhook(self, request: Request) -> Response:
        with self._lock:
            hook = self.webhooks.get(request.path_params["webhook_id"])
        if hook is None:
            return _error(404, "webhook not found")
        if request.method == "DELETE":
            with self._lock:
                self.webhooks.pop(hook["id"], None)
            return Response(status_code=204)
        if request.method == "PATCH":
            changes = (await request.json()).get("data") or {}
            with self._lock:
                for key in ("url", "events", "name", "active"):
                    if key in changes:
                        hook[key] = changes[key]
        return JSONResponse({"data": _public(hook)})


def _public(hook: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in hook.items() if k != "secret"}


def _error(status: int, title: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        {"errors": [{"title": title, "code": status}]}, status_code=status, headers=headers
    )


def _encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"o:{offset}".encode()).decode()


def _decode_cursor(cursor: str | None) -> int:
    if not cursor:
        return 0
    return int(base64.urlsafe_b64decode(cursor.encode()).decode().removeprefix("o:"))


class DeliveryRecorder:
    """A stand-in receiver on loopback that records raw deliveries and answers 202."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        app = Starlette(routes=[Route("/frameio-webhook", self._receive, methods=["POST"])])
        self._server = ServerThread(app)

    async def _receive(self, request: Request) -> Response:
        self.received.append((dict(request.headers), await request.body()))
        return JSONResponse({"accepted": True}, status_code=202)

    @property
    def url(self) -> str:
        """The recorder's base URL (deliveries go to ``/frameio-webhook``)."""
        return self._server.url

    def __enter__(self) -> DeliveryRecorder:
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop()
