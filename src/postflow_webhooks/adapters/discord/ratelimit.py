"""Per-webhook rate-limit state, driven only by the headers Discord sends back.

Every answer says how many requests are left in the current bucket and when
it refills (``X-RateLimit-Remaining``, ``X-RateLimit-Reset-After`` or
``X-RateLimit-Reset``, ``X-RateLimit-Bucket``). Nothing here assumes a limit:
before the first answer, and whenever requests remain, the next send may go at
once; when none remain, it waits until the bucket resets. A 429 blocks sends
for its ``retry_after``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

import attrs

MonotonicClock = Callable[[], float]
WallClock = Callable[[], float]


@attrs.frozen
class RateLimitSnapshot:
    """What the last answer said about the bucket, for status pages and logs."""

    bucket: str | None = None
    limit: int | None = None
    remaining: int | None = None
    resets_in: float | None = None
    blocked_for: float = 0.0
    rate_limited: int = 0


@attrs.define
class RateLimitState:
    """One webhook's bucket: when the next request may go out."""

    monotonic: MonotonicClock = time.monotonic
    wall: WallClock = time.time
    margin: float = 0.05
    bucket: str | None = None
    limit: int | None = None
    remaining: int | None = None
    reset_at: float | None = None
    blocked_until: float = 0.0
    rate_limited: int = 0

    def observe(self, headers: Mapping[str, str]) -> None:
        """Read the rate-limit headers of one answer (any status)."""
        now = self.monotonic()
        bucket = headers.get("x-ratelimit-bucket")
        if bucket is not None and bucket != self.bucket:
            self.bucket = bucket
            self.remaining = None
            self.reset_at = None
        limit = _int(headers.get("x-ratelimit-limit"))
        if limit is not None:
            self.limit = limit
        remaining = _int(headers.get("x-ratelimit-remaining"))
        if remaining is not None:
            self.remaining = remaining
        reset_after = _float(headers.get("x-ratelimit-reset-after"))
        if reset_after is None:
            reset_epoch = _float(headers.get("x-ratelimit-reset"))
            if reset_epoch is not None:
                reset_after = max(reset_epoch - self.wall(), 0.0)
        if reset_after is not None:
            self.reset_at = now + reset_after

    def block(self, retry_after: float) -> None:
        """A 429 arrived: no request before ``retry_after`` seconds from now."""
        self.rate_limited += 1
        self.blocked_until = max(self.blocked_until, self.monotonic() + max(retry_after, 0.0))
        self.remaining = 0

    def delay(self) -> float:
        """Seconds to wait before the next request; 0 when it may go now."""
        now = self.monotonic()
        wait = self.blocked_until - now
        if self.remaining is not None and self.remaining <= 0 and self.reset_at is not None:
            wait = max(wait, self.reset_at - now + self.margin)
        return max(wait, 0.0)

    def sent(self) -> None:
        """A request is going out; count it against the bucket until its answer arrives."""
        if self.remaining is not None and self.remaining > 0:
            self.remaining -= 1

    def snapshot(self) -> RateLimitSnapshot:
        """The state now, as plain values."""
        now = self.monotonic()
        return RateLimitSnapshot(
            bucket=self.bucket,
            limit=self.limit,
            remaining=self.remaining,
            resets_in=None if self.reset_at is None else max(self.reset_at - now, 0.0),
            blocked_for=max(self.blocked_until - now, 0.0),
            rate_limited=self.rate_limited,
        )


MAX_RETRY_AFTER = 600.0
"""The longest wait a 429 can impose, in seconds; longer (or infinite) asks are capped."""


def retry_after_from(headers: Mapping[str, str], body: object, default: float) -> float:
    """The wait a 429 asks for: JSON ``retry_after``, else ``Retry-After``, else the reset.

    Capped at ``MAX_RETRY_AFTER``: an absurd or infinite value (``1e999``) waits 600 s.
    """
    if isinstance(body, dict):
        value = body.get("retry_after")
        if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
            return min(float(value), MAX_RETRY_AFTER)
    for name in ("retry-after", "x-ratelimit-reset-after"):
        seconds = _float(headers.get(name))
        if seconds is not None and seconds >= 0:
            return min(seconds, MAX_RETRY_AFTER)
    return min(default, MAX_RETRY_AFTER)


def _int(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return int(text.strip())
    except ValueError:
        return None


def _float(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text.strip())
    except ValueError:
        return None
    return value if value == value and value not in (float("inf"), float("-inf")) else None
