"""The restart policy as a value: a tenacity ``AsyncRetrying`` built once and injected.

Transient failures (a crash, a fatal start-up error, never ready, rate limited) are
retried with bounded exponential backoff and jitter; a rate-limit answer waits
minutes instead. Failures the operator must fix (not installed, too old, metrics
port taken, invalid token) are never retried. Tests pass ``sleep=waits.append``.
"""

from __future__ import annotations

import asyncio
import inspect
import random
from collections.abc import Awaitable, Callable

import tenacity

from postflow_webhooks.adapters.cloudflared.config import RestartPolicy
from postflow_webhooks.adapters.cloudflared.errors import (
    PERMANENT_ERRORS,
    CloudflaredError,
    TunnelRateLimitedError,
)

Sleep = Callable[[float], Awaitable[None] | None]


class BackoffWait(tenacity.wait.wait_base):
    """Exponential backoff with jitter, capped; a long fixed wait after a rate limit."""

    def __init__(self, policy: RestartPolicy, rng: random.Random | None = None) -> None:
        self.policy = policy
        self._rng = rng or random.Random()

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        """The seconds to wait before the next attempt."""
        policy = self.policy
        jitter = self._rng.uniform(0, policy.jitter) if policy.jitter else 0.0
        outcome = retry_state.outcome
        if outcome is not None and isinstance(outcome.exception(), TunnelRateLimitedError):
            return policy.rate_limit_wait + jitter
        exponent = retry_state.attempt_number - 1
        try:
            base = policy.initial * policy.multiplier**exponent
        except OverflowError:
            base = policy.maximum
        return min(policy.maximum, base + jitter)


def is_transient(exc: BaseException) -> bool:
    """Whether another attempt may succeed without the operator's help."""
    return isinstance(exc, CloudflaredError) and not isinstance(exc, PERMANENT_ERRORS)


def restart_retrying(
    policy: RestartPolicy,
    *,
    sleep: Sleep = asyncio.sleep,
    rng: random.Random | None = None,
) -> tenacity.AsyncRetrying:
    """The retry policy for cloudflared attempts: at most ``max_failures`` in a row."""

    async def pause(seconds: float) -> None:
        result = sleep(seconds)  # a plain callable (``waits.append``) works as well
        if inspect.isawaitable(result):
            await result

    return tenacity.AsyncRetrying(
        sleep=pause,
        stop=tenacity.stop_after_attempt(policy.max_failures),
        wait=BackoffWait(policy, rng),
        retry=tenacity.retry_if_exception(is_transient),
        reraise=True,
    )
