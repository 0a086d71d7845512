"""What this process has seen of Adobe IMS and the Frame.io API, for health and metrics.

``ImsAuth`` reports each token it gets or is refused; ``FrameioClient``
reports how each API call ended. Nothing here makes a call of its own; it only
remembers, so ``/health`` can say "sign-in refused" or "the API is failing
since 10:42" and ``/metrics`` can count calls and errors by kind. No token,
secret or response body is kept.
"""

from __future__ import annotations

import enum
from collections import Counter
from datetime import datetime
from typing import TYPE_CHECKING

from postflow_webhooks.adapters.clock import SystemClock
from postflow_webhooks.adapters.frameio.errors import FrameioAuthError
from postflow_webhooks.domain.ports import Clock

if TYPE_CHECKING:  # client.py imports this module
    from postflow_webhooks.adapters.frameio.client import TokenSource


class SigninState(enum.Enum):
    """Whether Adobe IMS gives us tokens."""

    UNKNOWN = "unknown"  # nothing asked yet
    OK = "ok"  # a token was granted, or a cached one is still valid
    REFUSED = "refused"  # IMS (or Frame.io, for a fresh token) refused the credentials
    EXPIRED = "expired"  # the user sign-in expired and cannot be refreshed: run `auth`
    UNREACHABLE = "unreachable"  # IMS did not answer (network, 5xx, 429)


class CallKind(enum.Enum):
    """How one API call ended."""

    OK = "ok"
    NOT_FOUND = "not_found"
    RATE_LIMITED = "rate_limited"
    UNAUTHORIZED = "unauthorized"
    CLIENT_ERROR = "client_error"
    SERVER_ERROR = "server_error"
    NETWORK = "network"


FAILING = frozenset({CallKind.SERVER_ERROR, CallKind.NETWORK, CallKind.UNAUTHORIZED})


def call_kind(status: int | None) -> CallKind:
    """The kind of an answer's status (``None``: no answer at all)."""
    if status is None:
        return CallKind.NETWORK
    if status < 300:
        return CallKind.OK
    if status in (404, 410):
        return CallKind.NOT_FOUND
    if status == 429:
        return CallKind.RATE_LIMITED
    if status in (401, 403):
        return CallKind.UNAUTHORIZED
    if status >= 500:
        return CallKind.SERVER_ERROR
    return CallKind.CLIENT_ERROR


class FrameioObserver:
    """Sign-in state, API calls by kind, and since when the API has been failing."""

    def __init__(self, clock: Clock | None = None) -> None:
        self._clock: Clock = clock or SystemClock()
        self.signin = SigninState.UNKNOWN
        self.signin_detail: str | None = None
        self.signin_since: datetime | None = None
        self.token_requests: Counter[str] = Counter()
        self.calls: Counter[CallKind] = Counter()
        self.failing_since: datetime | None = None
        self.last_error: str | None = None
        self.last_ok_at: datetime | None = None

    def _signin(self, state: SigninState, detail: str | None) -> None:
        if state is not self.signin:
            self.signin_since = self._clock.now()
        self.signin, self.signin_detail = state, detail

    def _failing(self, detail: str) -> None:
        if self.failing_since is None:
            self.failing_since = self._clock.now()
        self.last_error = detail

    def token_cached(self) -> None:
        """A cached token was still valid (sign-in works as far as we know)."""
        if self.signin is SigninState.UNKNOWN:
            self._signin(SigninState.OK, None)

    def token_granted(self) -> None:
        """IMS gave us a token."""
        self.token_requests["granted"] += 1
        self._signin(SigninState.OK, None)

    def token_lent(self) -> None:
        """The host application lent us a token (its sign-in works)."""
        if self.signin is not SigninState.OK:
            self._signin(SigninState.OK, None)

    def token_refused(self, detail: str, *, expired: bool) -> None:
        """IMS refused the credentials, or the user sign-in needs renewing."""
        self.token_requests["refused"] += 1
        self._signin(SigninState.EXPIRED if expired else SigninState.REFUSED, detail)

    def token_unreachable(self, detail: str) -> None:
        """IMS did not answer."""
        self.token_requests["unreachable"] += 1
        self._signin(SigninState.UNREACHABLE, detail)
        self._failing(detail)

    def answered(self, status: int | None, detail: str | None = None) -> None:
        """An API call ended with ``status`` (``None``: no answer)."""
        kind = call_kind(status)
        self.calls[kind] += 1
        if kind in FAILING:
            self._failing(detail or (f"HTTP {status}" if status is not None else "no answer"))
            if kind is CallKind.UNAUTHORIZED:
                self._signin(SigninState.REFUSED, detail)
        elif kind is not CallKind.RATE_LIMITED:
            self.failing_since = None
            self.last_ok_at = self._clock.now()
            if self.signin is not SigninState.OK:
                self._signin(SigninState.OK, None)


class ObservedTokens:
    """A ``TokenSource`` that tells the observer how each token request went.

    Wraps the tokens the host application lends (``borrowed.py``), whose own
    sign-in we cannot see otherwise.
    """

    def __init__(self, tokens: TokenSource, observer: FrameioObserver) -> None:
        self._tokens = tokens
        self._observer = observer

    async def access_token(self) -> str:
        """The lent token; a refusal is observed, then raised."""
        try:
            token = await self._tokens.access_token()
        except FrameioAuthError as exc:
            self._observer.token_refused(str(exc), expired=exc.needs_sign_in)
            raise
        self._observer.token_lent()
        return token

    async def invalidate(self, rejected: str) -> None:
        """Pass the rejection on."""
        await self._tokens.invalidate(rejected)
