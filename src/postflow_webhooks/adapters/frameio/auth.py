"""Adobe IMS OAuth 2.0: client credentials, the authorization-code flow, refresh, a 0600 cache."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import attrs
import httpx

from postflow_webhooks.adapters.clock import SystemClock
from postflow_webhooks.adapters.frameio.callback import serve_callback
from postflow_webhooks.adapters.frameio.config import AuthFlow, FrameioConfig
from postflow_webhooks.adapters.frameio.errors import FrameioApiError, FrameioAuthError
from postflow_webhooks.adapters.frameio.observed import FrameioObserver
from postflow_webhooks.adapters.frameio.tokens import Token, TokenCache, TokenSummary
from postflow_webhooks.domain.ports import Clock

log = logging.getLogger("postflow_webhooks.frameio")

BrowserOpener = Callable[[str], Awaitable[None]]


class ImsAuth:
    """Hands out a valid bearer token: cached, refreshed before expiry, renewed after a 401."""

    def __init__(
        self,
        config: FrameioConfig,
        *,
        http: httpx.AsyncClient | None = None,
        cache: TokenCache | None = None,
        clock: Clock | None = None,
        observer: FrameioObserver | None = None,
    ) -> None:
        self._config = config
        self.observer = observer or FrameioObserver(clock)
        self._own_http = http is None
        timeout = httpx.Timeout(config.read_timeout, connect=config.connect_timeout)
        self._http = http or httpx.AsyncClient(timeout=timeout)
        self._cache = cache or TokenCache(config.token_cache_path)
        self._clock: Clock = clock or SystemClock()
        self._token: Token | None = None
        self._loaded = False
        self._lock = asyncio.Lock()
        self.token_requests = 0

    async def access_token(self) -> str:
        """A token valid for at least the refresh margin; fetched or refreshed as needed."""
        async with self._lock:
            token = self._current()
            if token is not None and not token.expiring(self._now(), self._config.refresh_margin):
                self.observer.token_cached()
                return token.access_token
            try:
                fresh = await self._renew(token)
            except FrameioAuthError as exc:
                self.observer.token_refused(str(exc), expired=exc.needs_sign_in)
                raise
            except FrameioApiError as exc:
                self.observer.token_unreachable(f"Adobe IMS cannot be reached: {exc}")
                raise
            self._store(fresh)
            self.observer.token_granted()
            return fresh.access_token

    async def invalidate(self, rejected: str) -> None:
        """Frame.io answered 401 to ``rejected``: renew it on the next call."""
        async with self._lock:
            token = self._current()
            if token is not None and secrets.compare_digest(
                token.access_token.encode(), rejected.encode()
            ):
                self._token = attrs.evolve(token, expires_at=0.0)

    def summary(self) -> TokenSummary | None:
        """What is cached now, without the token itself."""
        token = self._current()
        if token is None:
            return None
        return TokenSummary(
            path=self._cache.path,
            flow=token.flow,
            expires_at=datetime.fromtimestamp(token.expires_at, UTC),
            has_refresh_token=token.refresh_token is not None,
            scope=token.scope,
        )

    def authorization_url(self, state: str) -> str:
        """Where the user signs in for the authorization-code flow."""
        query = urlencode(
            {
                "client_id": self._config.client_id,
                "redirect_uri": self._config.redirect_uri,
                "scope": ",".join(self._config.user_scopes),
                "response_type": "code",
                "state": state,
            }
        )
        return f"{self._config.ims_authorize_url}?{query}"

    async def authorize_user(
        self, open_browser: BrowserOpener, *, timeout: float = 300.0
    ) -> TokenSummary:
        """Run the user flow: serve the callback on ``redirect_uri``, open the sign-in, store tokens."""
        state = secrets.token_urlsafe(24)
        async with serve_callback(self._config.redirect_uri, state) as code_future:
            await open_browser(self.authorization_url(state))
            try:
                code = await asyncio.wait_for(code_future, timeout)
            except TimeoutError:
                raise FrameioAuthError(
                    f"no sign-in reached {self._config.redirect_uri} within {timeout:g}s"
                ) from None
        token = await self.exchange_code(code)
        summary = self.summary()
        assert summary is not None
        log.info(
            "Frame.io user token stored in %s (refresh token: %s)",
            self._cache.path,
            token.refresh_token is not None,
        )
        return summary

    async def exchange_code(self, code: str) -> Token:
        """Trade an authorization code for tokens and store them."""
        form = {"grant_type": "authorization_code", "code": code}
        token = await self._request_token(form, AuthFlow.USER)
        async with self._lock:
            self._store(token)
        return token

    def forget(self) -> bool:
        """Drop the cached token (memory and disk); True if a file was removed."""
        self._token = None
        self._loaded = True
        return self._cache.clear()

    async def aclose(self) -> None:
        """Close the HTTP client if this object created it."""
        if self._own_http:
            await self._http.aclose()

    def _now(self) -> float:
        return self._clock.now().timestamp()

    def _current(self) -> Token | None:
        if not self._loaded:
            self._loaded = True
            cached = self._cache.load()
            if cached is not None and self._usable(cached):
                self._token = cached
        return self._token

    def _usable(self, token: Token) -> bool:
        if token.client_id != self._config.client_id:
            return False
        wanted = self._config.flow
        return wanted is AuthFlow.AUTO or token.flow is wanted

    def _store(self, token: Token) -> None:
        self._token = token
        self._cache.save(token)

    async def _renew(self, token: Token | None) -> Token:
        flow = self._config.flow
        if token is not None and token.refresh_token is not None:
            try:
                return await self._refresh(token)
            except FrameioAuthError as exc:
                if flow is AuthFlow.USER:
                    raise FrameioAuthError(
                        "the stored user token cannot be refreshed: run `postflow-webhooks auth`",
                        status=exc.status,
                        code=exc.code,
                        needs_sign_in=True,
                    ) from None
                log.warning("Frame.io refresh token refused; falling back to client credentials")
        if flow is AuthFlow.USER:
            raise FrameioAuthError(
                "no usable user token: run `postflow-webhooks auth`", needs_sign_in=True
            )
        form = {"grant_type": "client_credentials", "scope": ",".join(self._config.s2s_scopes)}
        return await self._request_token(form, AuthFlow.SERVER)

    async def _refresh(self, token: Token) -> Token:
        assert token.refresh_token is not None
        form = {"grant_type": "refresh_token", "refresh_token": token.refresh_token}
        fresh = await self._request_token(form, AuthFlow.USER)
        if fresh.refresh_token is None:  # IMS may keep the old refresh token valid
            fresh = attrs.evolve(fresh, refresh_token=token.refresh_token)
        return fresh

    async def _request_token(self, form: dict[str, str], flow: AuthFlow) -> Token:
        body = {
            **form,
            "client_id": self._config.client_id,
            "client_secret": self._config.client_secret,
        }
        self.token_requests += 1
        try:
            response = await self._http.post(self._config.ims_token_url, data=body)
        except httpx.TransportError as exc:
            raise FrameioApiError("POST", "IMS token", None, detail=type(exc).__name__) from None
        if response.status_code >= 500 or response.status_code == 429:
            raise FrameioApiError("POST", "IMS token", response.status_code)
        data = _json_object(response)
        if response.status_code != 200:
            code = data.get("error") if isinstance(data.get("error"), str) else None
            raise FrameioAuthError(
                f"Adobe IMS refused the {form['grant_type']} grant",
                status=response.status_code,
                code=code,
            )
        access, expires_in = data.get("access_token"), data.get("expires_in")
        if not isinstance(access, str) or not isinstance(expires_in, int | float):
            raise FrameioAuthError("Adobe IMS answered without access_token/expires_in")
        refresh = data.get("refresh_token")
        scope = data.get("scope")
        return Token(
            access_token=access,
            expires_at=self._now() + float(expires_in),
            flow=flow,
            client_id=self._config.client_id,
            refresh_token=refresh if isinstance(refresh, str) else None,
            scope=scope if isinstance(scope, str) else None,
        )


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
