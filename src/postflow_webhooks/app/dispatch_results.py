"""The dispatcher's values: how a pass ended, what it reports, its retry policy."""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Awaitable, Callable
from datetime import datetime

import attrs
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt
from tenacity.wait import wait_exponential_jitter

from postflow_webhooks.domain.errors import TransientError

Sleep = Callable[[float], Awaitable[None]]


def default_retrying(
    *,
    sleep: Sleep = asyncio.sleep,
    attempts: int = 5,
    initial: float = 1.0,
    maximum: float = 30.0,
    jitter: float = 1.0,
) -> AsyncRetrying:
    """The transient-failure policy: exponential backoff with jitter, ``attempts`` tries."""
    return AsyncRetrying(
        retry=retry_if_exception_type(TransientError),
        stop=stop_after_attempt(attempts),
        wait=wait_exponential_jitter(initial=initial, max=maximum, jitter=jitter),
        sleep=sleep,
        reraise=True,
    )


class PassOutcome(enum.Enum):
    """How a dispatcher pass ended, which decides when the next one runs."""

    IDLE = "idle"
    MORE = "more"
    BROKEN = "broken"
    OUTAGE = "outage"
    STOPPED = "stopped"


@attrs.frozen
class PassResult:
    """One pass: what it settled and how it ended; ``wait`` is the outage backoff."""

    outcome: PassOutcome
    settled: int = 0
    wait: float = 0.0


@attrs.frozen
class DispatcherState:
    """What ``/health`` and ``/webhook-status`` show about notifications."""

    destination: str
    label: str | None
    reason: str | None
    broken_since: datetime | None
    pending: int
    pending_capped: bool
    dead: int
    last_sent_at: datetime | None
    last_error: str | None
    running: bool
    sent: int
    skipped: int
    dead_lettered: int
    rate_limited: int

    @property
    def healthy(self) -> bool:
        """False while the destination is marked broken."""
        return self.destination != "broken"
