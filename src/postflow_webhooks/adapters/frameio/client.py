"""The V4 API over httpx: bearer auth, one retry on 401, 429 and transient failures retried."""

from __future__ import annotations

import asyncio
import email.utils
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, Protocol
from urllib.parse import urljoin, urlsplit

import httpx
import tenacity

from postflow_webhooks.adapters.frameio.config import FrameioConfig
from postflow_webhooks.adapters.frameio.errors import (
    FrameioApiError,
    FrameioAuthError,
    FrameioRateLimitedError,
)
from postflow_webhooks.adapters.frameio.observed import FrameioObserver

log = logging.getLogger("postflow_webhooks.frameio")

Sleep = Callable[[float], Awaitable[None]]
JsonObject = dict[str, Any]

MAX_RETRY_AFTER = 120.0
_USER_AGENT = "postflow-webhooks"


class TokenSource(Protocol):
    """Supplies bearer tokens and hears about rejected ones (``ImsAuth`` fits)."""

    async def access_token(self) -> str:
        """A token believed valid."""
        ...

    async def invalidate(self, rejected: str) -> None:
        """The API answered 401 to ``rejected``."""
        ...


def _is_transient(exc: BaseException) -> bool:
    return isinstance(exc, FrameioApiError) and exc.transient


class wait_retry_after(tenacity.wait.wait_base):
    """Wait what a 429 asked (capped), else what ``fallback`` says."""

    def __init__(self, fallback: tenacity.wait.wait_base, cap: float = MAX_RETRY_AFTER) -> None:
        self.fallback = fallback
        self.cap = cap

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        """Seconds to wait before the next attempt."""
        outcome = retry_state.outcome
        exc = outcome.exception() if outcome is not None else None
        if isinstance(exc, FrameioRateLimitedError):
            return min(max(exc.retry_after, 0.0), self.cap)
        return float(self.fallback(retry_state))


def retry_policy(
    *,
    attempts: int = 4,
    initial: float = 0.5,
    maximum: float = 10.0,
    sleep: Sleep = asyncio.sleep,
) -> tenacity.AsyncRetrying:
    """The default policy: transient failures only, 429 waits ``Retry-After``, bounded attempts."""
    return tenacity.AsyncRetrying(
        stop=tenacity.stop_after_attempt(attempts),
        wait=wait_retry_after(
            tenacity.wait_exponential_jitter(multiplier=initial, max=maximum, jitter=initial)
        ),
        retry=tenacity.retry_if_exception(_is_transient),
        sleep=sleep,
        reraise=True,
    )


def parse_retry_after(value: str | None, now: float | None = None) -> float:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP date); 1 s if unreadable."""
    if not value:
        return 1.0
    text = value.strip()
    try:
        return max(float(text), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return 1.0
    return max(when.timestamp() - (time.time() if now is None else now), 0.0)


class FrameioClient:
    """Authenticated V4 calls; non-2xx answers become ``FrameioApiError`` after the retries."""

    def __init__(
        self,
        config: FrameioConfig,
        auth: TokenSource,
        *,
        http: httpx.AsyncClient | None = None,
        retrying: tenacity.AsyncRetrying | None = None,
        observer: FrameioObserver | None = None,
    ) -> None:
        self._config = config
        self._auth = auth
        self.observer = observer or FrameioObserver()
        self._own_http = http is None
        timeout = httpx.Timeout(config.read_timeout, connect=config.connect_timeout)
        self._http = http or httpx.AsyncClient(timeout=timeout)
        self._retrying = retrying or retry_policy()
        self._origin = config.api_origin
        self.calls = 0

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        json: JsonObject | None = None,
        allow: tuple[int, ...] = (),
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """One call with the retry policy; statuses in ``allow`` are returned, not raised."""
        retrying = self._retrying.copy()
        async for attempt in retrying:
            with attempt:
                return await self._once(method, path, params, json, allow, headers)
        raise AssertionError("unreachable: tenacity reraises the last failure")

    async def get_json(
        self,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> JsonObject | None:
        """The decoded body of a GET, or ``None`` when Frame.io answers 404 or 410."""
        response = await self.request("GET", path, params=params, allow=(404, 410), headers=headers)
        if response.status_code in (404, 410):
            return None
        return _object(response, "GET", path)

    async def send_json(self, method: str, path: str, body: JsonObject) -> JsonObject:
        """POST or PATCH a JSON body and decode the answer."""
        response = await self.request(method, path, json=body)
        return _object(response, method, path)

    async def paginate(
        self, path: str, *, params: Mapping[str, str | int] | None = None
    ) -> AsyncIterator[JsonObject]:
        """Every item of a list call, following ``links.next`` until it is null."""
        next_path: str | None = path
        next_params = params
        seen: set[str] = set()
        while next_path is not None:
            response = await self.request("GET", next_path, params=next_params)
            page = _object(response, "GET", next_path)
            for item in page.get("data") or []:
                if isinstance(item, dict):
                    yield item
            following = (page.get("links") or {}).get("next")
            if not isinstance(following, str) or not following or following in seen:
                break
            seen.add(following)
            next_path, next_params = self._same_origin(following), None

    async def aclose(self) -> None:
        """Close the HTTP client if this object created it."""
        if self._own_http:
            await self._http.aclose()

    def _same_origin(self, link: str) -> str:
        absolute = urljoin(self._origin + "/", link)
        parts = urlsplit(absolute)
        if f"{parts.scheme}://{parts.netloc}" != self._origin:
            raise FrameioApiError("GET", parts.path, None, detail="next page is on another host")
        return absolute[len(self._origin) :]

    async def _once(
        self,
        method: str,
        path: str,
        params: Mapping[str, str | int] | None,
        json: JsonObject | None,
        allow: tuple[int, ...],
        extra: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        response = await self._send(method, path, params, json, extra)
        if response.status_code == 401:
            rejected = response.request.headers.get("authorization", "").removeprefix("Bearer ")
            await self._auth.invalidate(rejected)
            response = await self._send(method, path, params, json, extra)
            if response.status_code == 401:
                refused = FrameioAuthError(
                    "Frame.io refused a fresh token (check the credential's scopes and products)",
                    status=401,
                    code=_error_code(response),
                )
                self.observer.answered(401, str(refused))
                raise refused
        status = response.status_code
        if status < 300 or status in allow:
            self.observer.answered(status)
            return response
        if status == 429:
            retry_after = parse_retry_after(response.headers.get("retry-after"))
            log.info("Frame.io rate limit on %s %s; waiting %.1fs", method, path, retry_after)
            self.observer.answered(status)
            raise FrameioRateLimitedError(method, path, retry_after)
        error = FrameioApiError(
            method, _bare(path), status, code=_error_code(response), detail=_error_title(response)
        )
        self.observer.answered(status, str(error))
        raise error

    async def _send(
        self,
        method: str,
        path: str,
        params: Mapping[str, str | int] | None,
        json: JsonObject | None,
        extra: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        token = await self._auth.access_token()
        headers = {**(extra or {}), "Authorization": f"Bearer {token}", "User-Agent": _USER_AGENT}
        self.calls += 1
        try:
            return await self._http.request(
                method, self._origin + path, params=params, json=json, headers=headers
            )
        except httpx.TransportError as exc:
            error = FrameioApiError(method, _bare(path), None, detail=type(exc).__name__)
            self.observer.answered(None, str(error))
            raise error from None


def _bare(path: str) -> str:
    return path.split("?", 1)[0]


def _object(response: httpx.Response, method: str, path: str) -> JsonObject:
    try:
        data = response.json()
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise FrameioApiError(method, _bare(path), response.status_code, detail="not a JSON object")
    return data


def _first_error(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {}
    errors = data.get("errors") if isinstance(data, dict) else None
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        return errors[0]
    return {}


def _error_code(response: httpx.Response) -> str | None:
    code = _first_error(response).get("code")
    return str(code)[:60] if isinstance(code, str | int) else None


def _error_title(response: httpx.Response) -> str | None:
    title = _first_error(response).get("title") or _first_error(response).get("detail")
    return str(title)[:200] if isinstance(title, str) else None
