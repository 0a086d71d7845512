"""Every retry and backoff of the receiver: tenacity values, built here and injected.

A use case waits ``backoff(n)`` seconds after its ``n``-th failure in a row;
the value is a tenacity wait strategy, which caps its exponent (no overflow,
however long an outage lasts). Tests inject their own sleep and assert on
the waits.
"""

from __future__ import annotations

import attrs
import tenacity

from postflow_webhooks.domain.ports import Backoff


def backoff(wait: tenacity.wait.wait_base) -> Backoff:
    """A ``Backoff`` from a tenacity wait strategy: the wait before attempt ``n + 1``."""
    retrying = tenacity.Retrying()

    def seconds(failures: int) -> float:
        state = tenacity.RetryCallState(retrying, None, (), {})
        state.attempt_number = max(1, failures)
        return float(wait(state))

    return seconds


def exponential(first: float, ceiling: float, *, jitter: float = 0.0) -> Backoff:
    """``first`` seconds, doubling after each failure, never above ``ceiling``; with jitter."""
    if jitter:
        return backoff(
            tenacity.wait_exponential_jitter(multiplier=first, max=ceiling, jitter=jitter)
        )
    return backoff(tenacity.wait_exponential(multiplier=first, max=ceiling))


@attrs.frozen
class Policies:
    """The backoffs of every background loop, in one place."""

    worker_failure: Backoff = attrs.field(factory=lambda: exponential(1.0, 30.0))
    enrichment: Backoff = attrs.field(factory=lambda: exponential(1.0, 300.0))
    notification_outage: Backoff = attrs.field(factory=lambda: exponential(1.0, 300.0, jitter=1.0))
    tracker_failure: Backoff = attrs.field(factory=lambda: exponential(1.0, 60.0))
    registration: Backoff = attrs.field(factory=lambda: exponential(6.0, 300.0, jitter=1.0))
    # Reconnecting to a shared database: short, so roles come back within seconds.
    store_reconnect: Backoff = attrs.field(factory=lambda: exponential(0.5, 2.0))
