"""Errors of the Frame.io adapter; they carry data and never a secret or a token."""

from __future__ import annotations


class FrameioError(Exception):
    """Base class of every error the Frame.io adapter raises."""


class FrameioConfigError(FrameioError):
    """A Frame.io setting is missing or malformed; names the key and where it was read."""

    def __init__(self, key: str, source: str, problem: str) -> None:
        super().__init__(f"{source}: {key}: {problem}")
        self.key = key
        self.source = source
        self.problem = problem


class FrameioAuthError(FrameioError):
    """Adobe IMS refused us, or no usable token exists; ``reason`` says what to do."""

    def __init__(
        self,
        reason: str,
        *,
        status: int | None = None,
        code: str | None = None,
        needs_sign_in: bool = False,
    ) -> None:
        detail = f" (HTTP {status}{', ' + code if code else ''})" if status is not None else ""
        super().__init__(f"{reason}{detail}")
        self.reason = reason
        self.status = status
        self.code = code
        self.needs_sign_in = needs_sign_in


class FrameioApiError(FrameioError):
    """Frame.io answered a call with an error status (``status`` is None for network failures)."""

    def __init__(
        self,
        method: str,
        path: str,
        status: int | None,
        *,
        code: str | None = None,
        detail: str | None = None,
    ) -> None:
        where = f"{method} {path}"
        what = f"HTTP {status}" if status is not None else "no answer"
        extra = f" [{code}]" if code else ""
        tail = f": {detail}" if detail else ""
        super().__init__(f"Frame.io {where}: {what}{extra}{tail}")
        self.method = method
        self.path = path
        self.status = status
        self.code = code
        self.detail = detail

    @property
    def transient(self) -> bool:
        """True when trying again later may succeed (5xx, 429, network)."""
        return self.status is None or self.status == 429 or self.status >= 500


class FrameioRateLimitedError(FrameioApiError):
    """Frame.io answered 429; ``retry_after`` is how long it asked us to wait, in seconds."""

    def __init__(self, method: str, path: str, retry_after: float) -> None:
        super().__init__(
            method, path, 429, code="rate_limited", detail=f"retry after {retry_after:g}s"
        )
        self.retry_after = retry_after
