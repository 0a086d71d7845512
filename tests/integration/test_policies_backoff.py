"""Every retry and backoff survives 10,000 consecutive failures: finite waits, never above the cap.

The loops run for real against parts that always fail, with an injected sleep
that records each wait instead of sleeping; the tenacity policies are also
asked directly for attempt numbers up to 10,000.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import pytest
import tenacity

from postflow_webhooks.adapters.cloudflared import (
    CloudflaredExitedError,
    RestartPolicy,
    TunnelRateLimitedError,
    restart_retrying,
)
from postflow_webhooks.adapters.cloudflared.supervisor import BackoffWait
from postflow_webhooks.adapters.frameio import (
    FrameioApiError,
    FrameioRateLimitedError,
    retry_policy,
)
from postflow_webhooks.adapters.frameio.client import MAX_RETRY_AFTER
from postflow_webhooks.adapters.memory import FixedClock, MemoryDatabase
from postflow_webhooks.app.policies import Policies
from postflow_webhooks.domain.errors import TransientError
from postflow_webhooks.domain.journal import BatchResult
from postflow_webhooks.domain.ports import RegisteredWebhook
from postflow_webhooks.domain.records import Notification, NotificationKind
from postflow_webhooks.domain.statuses import PostflowStatus
from postflow_webhooks.service.dispatcher import NotificationDispatcher, PassOutcome
from postflow_webhooks.service.registration import WebhookRegistrar

pytestmark = pytest.mark.anyio

FAILURES = 10_000
AT = datetime(2026, 1, 1, tzinfo=UTC)
OUTAGE_CEILING = 300.0  # Policies.notification_outage
REGISTRATION_CEILING = 300.0  # Policies.registration
FRAMEIO_CEILING = 10.0  # retry_policy(maximum=10.0)


class Waits:
    """An injected sleep that records every wait and returns at once."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        """Record the wait."""
        self.waits.append(seconds)


def assert_capped(waits: Sequence[float], cap: float, *, floor: float = 0.0) -> None:
    """Every wait is a finite float in [floor, cap], and the last hundred sit on the cap."""
    assert waits, "no wait was recorded"
    for wait in waits:
        assert isinstance(wait, float) and math.isfinite(wait), wait
        assert floor <= wait <= cap, wait
    assert all(wait == cap for wait in waits[-100:])


def call_state(attempt: int, failure: BaseException | None = None) -> tenacity.RetryCallState:
    """A tenacity call state at ``attempt``, optionally after ``failure``."""
    state = tenacity.RetryCallState(tenacity.Retrying(), None, (), {})
    state.attempt_number = attempt
    if failure is not None:
        state.set_exception((type(failure), failure, None))
    return state


def waits_of(wait: Callable[[tenacity.RetryCallState], float]) -> list[float]:
    """What a tenacity wait strategy answers for attempts 1 to 10,000 in a row."""
    return [wait(call_state(attempt)) for attempt in range(1, FAILURES + 1)]


# -- the notification dispatcher -----------------------------------------------


class DownNotifier:
    """A destination that is always down (every send is a transient failure)."""

    def __init__(self) -> None:
        self.calls = 0

    @property
    def key(self) -> str:
        """The destination's key."""
        return "down:1"

    @property
    def label(self) -> str:
        """How it is shown."""
        return "always-down destination"

    def ready_in(self) -> float:
        """Never asks to wait: only the outage backoff paces the retries."""
        return 0.0

    async def send(self, notification: Notification) -> None:
        """Fail, as a 503 would."""
        self.calls += 1
        raise TransientError("503 Service Unavailable (test)")


async def one_due_notification() -> MemoryDatabase:
    """A database with one notification due."""
    db = MemoryDatabase()
    note = Notification(
        kind=NotificationKind.STATUS,
        file_id="f-1",
        at=AT,
        event_type="file.ready",
        delivery_id="d-1",
        version=1,
        name="a.mov",
        old_status=PostflowStatus.PROCESSING,
        new_status=PostflowStatus.COMPLETED,
    )
    await db.commit(BatchResult(at=AT, notifications=(note,)))
    return db


def outage_dispatcher(
    db: MemoryDatabase, notifier: DownNotifier, waits: Waits
) -> NotificationDispatcher:
    """A dispatcher with the default outage policy and a recording sleep."""
    return NotificationDispatcher(
        db,
        db,
        notifier,
        FixedClock(AT),
        outage_backoff=Policies().notification_outage,
        sleep=waits,
    )


async def test_the_dispatcher_drains_through_ten_thousand_outages_with_capped_waits() -> None:
    """drain() against a destination always down: 10,000 finite waits, capped at 300 s, none lost."""
    db = await one_due_notification()
    notifier, waits = DownNotifier(), Waits()
    dispatcher = outage_dispatcher(db, notifier, waits)
    assert await dispatcher.drain(max_passes=FAILURES) == 0
    assert notifier.calls == FAILURES and len(waits.waits) == FAILURES
    assert 1.0 <= waits.waits[0] <= 2.0
    assert_capped(waits.waits, OUTAGE_CEILING, floor=1.0)
    assert len(await db.due(10)) == 1 and await db.dead_letters() == []
    assert not dispatcher.state()["destination_broken"]


async def test_every_one_of_ten_thousand_outage_passes_reports_a_capped_wait() -> None:
    """run_once() 10,000 times: each pass ends OUTAGE with a finite wait at most 300 s."""
    db = await one_due_notification()
    notifier, waits = DownNotifier(), Waits()
    dispatcher = outage_dispatcher(db, notifier, waits)
    results = [await dispatcher.run_once() for _ in range(FAILURES)]
    assert {result.outcome for result in results} == {PassOutcome.OUTAGE}
    assert all(result.settled == 0 for result in results)
    assert_capped([result.wait for result in results], OUTAGE_CEILING, floor=1.0)
    assert waits.waits == [] and notifier.calls == FAILURES
    assert len(await db.due(10)) == 1


# -- the webhook registrar ---------------------------------------------------------


class DownRegistry:
    """A Frame.io that never accepts our webhook (every call fails with a 503)."""

    name = "postflow-webhooks"

    def __init__(self) -> None:
        self.calls = 0

    async def point_at(self, url: str, *, create: bool) -> RegisteredWebhook | None:
        """Fail, as Frame.io answering 503 would."""
        self.calls += 1
        raise FrameioApiError("GET", "/v4/accounts/a/workspaces/w/webhooks", 503)


async def test_the_registrar_retries_ten_thousand_times_with_capped_waits() -> None:
    """A registry always failing: the registrar keeps retrying, waits finite and capped at 300 s."""
    registry = DownRegistry()
    waits: list[float] = []
    enough = asyncio.Event()

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) >= FAILURES:
            enough.set()
            await asyncio.Event().wait()  # parked here until the registrar is closed

    registrar = WebhookRegistrar(
        registry, FixedClock(AT), backoff=Policies().registration, sleep=sleep
    )
    await registrar.on_new_public_url("https://down.trycloudflare.com")
    await asyncio.wait_for(enough.wait(), timeout=100)
    status = registrar.status()
    assert status.pending and status.updates == 0
    assert status.last_error is not None and "503" in status.last_error
    await registrar.aclose()
    assert registry.calls == FAILURES and len(waits) == FAILURES
    assert 6.0 <= waits[0] <= 7.0
    assert_capped(waits, REGISTRATION_CEILING, floor=6.0)
    assert registrar.status().pending


def test_every_default_policy_stays_finite_and_capped_for_ten_thousand_failures() -> None:
    """Each backoff of Policies() answers finite waits up to its ceiling for 1..10,000 failures."""
    policies = Policies()
    ceilings = {
        "worker_failure": 30.0,
        "enrichment": 300.0,
        "notification_outage": 300.0,
        "tracker_failure": 60.0,
        "registration": 300.0,
    }
    for name, ceiling in ceilings.items():
        backoff = getattr(policies, name)
        assert_capped([backoff(n) for n in range(1, FAILURES + 1)], ceiling)


# -- the Frame.io client's retry policy ----------------------------------------


def test_the_frameio_retry_wait_is_finite_and_capped_up_to_attempt_ten_thousand() -> None:
    """retry_policy's wait: finite, at most 10 s, for every attempt number up to 10,000."""
    assert_capped(waits_of(retry_policy().wait), FRAMEIO_CEILING)


@pytest.mark.parametrize("asked", [3600.0, 1e300, math.inf])
def test_a_frameio_rate_limit_wait_is_capped_however_long_it_asks(asked: float) -> None:
    """A 429 asking for an hour, 1e300 s or forever waits at most MAX_RETRY_AFTER."""
    wait = retry_policy().wait
    limited = FrameioRateLimitedError("GET", "/v4/files/x", asked)
    for attempt in (1, 2, 100, FAILURES):
        seconds = wait(call_state(attempt, limited))
        assert isinstance(seconds, float) and seconds == MAX_RETRY_AFTER


async def test_the_frameio_client_policy_survives_ten_thousand_failed_attempts() -> None:
    """retry_policy(attempts=10,000) around a call that always fails: 9,999 capped waits."""
    waits = Waits()
    retrying = retry_policy(attempts=FAILURES, sleep=waits)
    calls = 0
    with pytest.raises(FrameioApiError, match="HTTP 503"):
        async for attempt in retrying:
            with attempt:
                calls += 1
                raise FrameioApiError("GET", "/v4/files/x", 503)
    assert calls == FAILURES and len(waits.waits) == FAILURES - 1
    assert_capped(waits.waits, FRAMEIO_CEILING)


# -- the cloudflared restart policy --------------------------------------------


def test_the_restart_wait_is_finite_and_capped_up_to_attempt_ten_thousand() -> None:
    """BackoffWait with a RestartPolicy: finite, at most ``maximum``, for every attempt number."""
    policy = RestartPolicy()
    assert_capped(waits_of(BackoffWait(policy)), policy.maximum)
    steep = RestartPolicy(initial=4.0, maximum=600.0, multiplier=3.0, jitter=0.0)
    assert_capped(waits_of(BackoffWait(steep)), steep.maximum)
    assert_capped(waits_of(restart_retrying(policy).wait), policy.maximum)


def test_a_cloudflare_rate_limit_waits_the_long_fixed_wait_at_any_attempt() -> None:
    """After a rate limit the restart wait is ``rate_limit_wait`` (plus jitter), never more."""
    policy = RestartPolicy()
    wait = BackoffWait(policy)
    for attempt in (1, 2, 100, FAILURES):
        seconds = wait(call_state(attempt, TunnelRateLimitedError()))
        assert math.isfinite(seconds)
        assert policy.rate_limit_wait <= seconds <= policy.rate_limit_wait + policy.jitter


async def test_the_restart_policy_survives_ten_thousand_failed_starts() -> None:
    """restart_retrying with max_failures=10,000 around starts that always exit: capped waits."""
    policy = RestartPolicy(max_failures=FAILURES)
    waits = Waits()
    retrying = restart_retrying(policy, sleep=waits)
    starts = 0
    with pytest.raises(CloudflaredExitedError):
        async for attempt in retrying:
            with attempt:
                starts += 1
                raise CloudflaredExitedError(1, "failed to reach the edge (test)")
    assert starts == FAILURES and len(waits.waits) == FAILURES - 1
    assert_capped(waits.waits, policy.maximum)
