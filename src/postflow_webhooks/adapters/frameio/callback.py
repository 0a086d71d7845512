"""The local callback server of the authorization-code flow, listening on ``redirect_uri``."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import webbrowser
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit

from postflow_webhooks.adapters.frameio.errors import FrameioAuthError

_MAX_HEAD = 16 * 1024
_DONE = "Frame.io sign-in received. You can close this window."


async def open_in_browser(url: str) -> None:
    """Open the sign-in page in the user's browser (the CLI prints the URL as well)."""
    await asyncio.to_thread(webbrowser.open, url)


@contextlib.asynccontextmanager
async def serve_callback(redirect_uri: str, state: str) -> AsyncIterator[asyncio.Future[str]]:
    """Listen on the redirect URI's host and port; the future resolves to the authorization code."""
    parts = urlsplit(redirect_uri)
    if parts.scheme != "http" or not parts.hostname:
        raise FrameioAuthError(
            f"the local callback needs an http:// redirect_uri on this machine, got {parts.scheme}://"
        )
    port = parts.port or 80
    path = parts.path or "/"
    loop = asyncio.get_running_loop()
    code: asyncio.Future[str] = loop.create_future()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            writer.close()
            return
        status, text = _answer(head, path, state, code)
        body = text.encode()
        writer.write(
            f"HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        writer.close()

    try:
        server = await asyncio.start_server(handle, parts.hostname, port, limit=_MAX_HEAD)
    except OSError as exc:
        raise FrameioAuthError(
            f"cannot listen on {parts.hostname}:{port} for the sign-in callback ({exc.strerror})"
        ) from None
    try:
        yield code
    finally:
        server.close()
        await server.wait_closed()
        if not code.done():
            code.cancel()


def _answer(head: bytes, path: str, state: str, code: asyncio.Future[str]) -> tuple[str, str]:
    request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
    method, _, rest = request_line.partition(" ")
    target = rest.rsplit(" ", 1)[0]
    url = urlsplit(target)
    if method != "GET" or url.path != path:
        return "404 Not Found", "Not the sign-in callback."
    query = parse_qs(url.query)
    got_state = query.get("state", [""])[0]
    if not secrets.compare_digest(got_state.encode(), state.encode()):
        return "400 Bad Request", "State mismatch: start the sign-in again."
    if "error" in query:
        if not code.done():
            code.set_exception(FrameioAuthError(f"sign-in refused: {query['error'][0][:80]}"))
        return "400 Bad Request", "Sign-in refused."
    value = query.get("code", [""])[0]
    if not value:
        return "400 Bad Request", "No authorization code in the callback."
    if not code.done():
        code.set_result(value)
    return "200 OK", _DONE
