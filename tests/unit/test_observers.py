"""What the receiver remembers for its own health: Frame.io calls, sign-in, HTTP requests."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from postflow_webhooks.adapters.frameio.observed import (
    CallKind,
    FrameioObserver,
    SigninState,
    call_kind,
)
from postflow_webhooks.adapters.http.metering import RequestCounts, path_label
from postflow_webhooks.adapters.memory import FixedClock

T0 = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (None, CallKind.NETWORK),
        (200, CallKind.OK),
        (204, CallKind.OK),
        (404, CallKind.NOT_FOUND),
        (410, CallKind.NOT_FOUND),
        (429, CallKind.RATE_LIMITED),
        (401, CallKind.UNAUTHORIZED),
        (403, CallKind.UNAUTHORIZED),
        (422, CallKind.CLIENT_ERROR),
        (503, CallKind.SERVER_ERROR),
    ],
)
def test_each_answer_is_counted_under_its_kind(status: int | None, kind: CallKind) -> None:
    """Network failures, successes, 404s, 429s, 401s, 4xx and 5xx each have their kind."""
    assert call_kind(status) is kind


def test_the_api_is_failing_from_the_first_failure_until_the_next_success() -> None:
    """failing_since is the first failure's time; a later success clears it."""
    clock = FixedClock(T0)
    seen = FrameioObserver(clock)
    seen.answered(503, "Frame.io GET /x: HTTP 503")
    clock.advance(10)
    seen.answered(None, "Frame.io GET /x: no answer: ConnectError")
    assert seen.failing_since == T0 and "ConnectError" in (seen.last_error or "")
    seen.answered(429)
    assert seen.failing_since == T0, "a rate limit neither fails nor heals"
    clock.advance(5)
    seen.answered(200)
    assert seen.failing_since is None and seen.last_ok_at == clock.now()
    assert seen.calls[CallKind.SERVER_ERROR] == 1 and seen.calls[CallKind.OK] == 1


def test_sign_in_states_follow_what_ims_says() -> None:
    """Refused, then granted, then the user sign-in expired; each change has its time."""
    clock = FixedClock(T0)
    seen = FrameioObserver(clock)
    assert seen.signin is SigninState.UNKNOWN
    seen.token_refused("Adobe IMS refused the client_credentials grant (HTTP 401)", expired=False)
    assert seen.signin is SigninState.REFUSED and seen.signin_since == T0
    clock.advance(60)
    seen.token_granted()
    assert seen.signin is SigninState.OK and seen.signin_since == clock.now()
    seen.token_refused("run `postflow-webhooks auth`", expired=True)
    assert seen.signin is SigninState.EXPIRED
    assert dict(seen.token_requests) == {"refused": 2, "granted": 1}


def test_ims_out_of_reach_is_both_a_sign_in_state_and_an_api_failure() -> None:
    """An unreachable IMS makes the API failing too (nothing can be asked)."""
    seen = FrameioObserver(FixedClock(T0))
    seen.token_unreachable("Adobe IMS cannot be reached: ConnectError")
    assert seen.signin is SigninState.UNREACHABLE and seen.failing_since == T0


def test_a_frameio_401_for_a_fresh_token_counts_as_sign_in_refused() -> None:
    """Frame.io refusing a token IMS just gave: the credential lacks the product."""
    seen = FrameioObserver(FixedClock(T0))
    seen.token_granted()
    seen.answered(401, "Frame.io refused a fresh token")
    assert seen.signin is SigninState.REFUSED and seen.calls[CallKind.UNAUTHORIZED] == 1


def test_a_cached_token_says_ok_only_when_nothing_else_is_known() -> None:
    """A valid cached token does not hide a refusal seen since."""
    seen = FrameioObserver(FixedClock(T0))
    seen.token_cached()
    assert seen.signin is SigninState.OK
    seen.token_refused("refused", expired=False)
    seen.token_cached()
    assert seen.signin is SigninState.REFUSED


@pytest.mark.parametrize(
    ("path", "label"),
    [
        ("/frameio-webhook", "/frameio-webhook"),
        ("/uploads/f-123", "/uploads/{file_id}"),
        ("/ui/api/files", "/ui"),
        ("/", "/"),
        ("/wp-login.php", "other"),
        ("/uploads", "/uploads"),
    ],
)
def test_request_paths_are_counted_under_route_names_never_raw_ids(path: str, label: str) -> None:
    """Ids and unknown paths never become labels of their own."""
    assert path_label(path) == label


def test_the_last_hour_has_sixty_minutes_of_webhook_answers() -> None:
    """202s, 4xx and 5xx on the webhook land in their minute; other paths do not."""
    now = [1_800_000_000.0]
    counts = RequestCounts(clock=lambda: now[0])
    counts.count("/frameio-webhook", "POST", 202)
    counts.count("/frameio-webhook", "POST", 401)
    counts.count("/health", "GET", 200)
    now[0] += 120
    counts.count("/frameio-webhook", "POST", 202)
    counts.count("/frameio-webhook", "POST", 503)
    counts.count("/frameio-webhook", "POST", None)
    hour = counts.last_hour()
    assert len(hour) == 60 and hour[-1]["minute"] == int(now[0] // 60) * 60
    assert hour[-1] == {"minute": hour[-1]["minute"], "accepted": 1, "refused": 0, "failed": 1}
    assert hour[-3]["accepted"] == 1 and hour[-3]["refused"] == 1
    assert counts.requests["/frameio-webhook", "POST", None] == 1
    assert counts.requests["/health", "GET", 200] == 1


def test_minutes_older_than_an_hour_are_forgotten() -> None:
    """Two hours later, the old answers are no longer in the chart."""
    now = [1_800_000_000.0]
    counts = RequestCounts(clock=lambda: now[0])
    counts.count("/frameio-webhook", "POST", 202)
    now[0] += 7200
    assert sum(m["accepted"] for m in counts.last_hour()) == 0
