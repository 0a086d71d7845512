"""The health rules: each observation becomes the documented reason, severity and words."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import attrs
import pytest

from postflow_webhooks.app.health import (
    ALERT_TITLES,
    REASONS,
    DestinationView,
    FrameioView,
    Observations,
    RegistrationView,
    Thresholds,
    assess,
)
from postflow_webhooks.domain.health import Finding, Severity, Verdict, verdict
from postflow_webhooks.domain.ports import TunnelInfo

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
LIMITS = Thresholds(tunnel_down=60, backlog_age=120)


def seen(**changes: object) -> Observations:
    """Observations of a healthy receiver, changed as asked."""
    return attrs.evolve(Observations(now=NOW), **changes)  # type: ignore[arg-type]


def only(observations: Observations) -> Finding:
    """The one finding ``observations`` give."""
    found = assess(observations, LIMITS)
    assert len(found) == 1, found
    return found[0]


def ago(seconds: float) -> datetime:
    """A moment ``seconds`` before NOW."""
    return NOW - timedelta(seconds=seconds)


def test_a_healthy_receiver_has_no_finding_and_is_ok() -> None:
    """Nothing observed wrong: no finding, verdict ok, exit code 0."""
    assert assess(seen(), LIMITS) == []
    assert verdict([]) is Verdict.OK and Verdict.OK.exit_code == 0


def test_every_reason_has_a_documented_severity_and_every_alert_a_known_reason() -> None:
    """REASONS covers each reason the rules give; alert titles only name known reasons."""
    assert set(ALERT_TITLES) <= set(REASONS)
    assert {severity for severity, _ in REASONS.values()} == {Severity.PROBLEM, Severity.WARNING}


def test_a_store_that_cannot_be_written_is_a_problem_naming_the_error() -> None:
    """store_not_writable is a problem and carries the database's words."""
    finding = only(seen(store_error="database data/postflow.sqlite3: disk I/O error"))
    assert finding.reason == "store_not_writable" and finding.severity is Severity.PROBLEM
    assert "disk I/O error" in finding.message and finding.message.startswith("storage: ")


def test_a_failing_or_stopped_worker_is_a_problem() -> None:
    """worker_failing carries the error; worker_stopped says to restart."""
    failing = only(seen(worker_error="StorageError: locked"))
    stopped = only(seen(worker_alive=False))
    assert (failing.reason, failing.severity) == ("worker_failing", Severity.PROBLEM)
    assert (stopped.reason, stopped.severity) == ("worker_stopped", Severity.PROBLEM)
    assert "restart" in stopped.message


def test_the_backlog_becomes_a_problem_only_past_its_threshold() -> None:
    """A pending delivery 119 s old is fine; 121 s old is backlog_stale, since its arrival."""
    assert assess(seen(oldest_pending_at=ago(119)), LIMITS) == []
    finding = only(seen(oldest_pending_at=ago(121)))
    assert finding.reason == "backlog_stale" and finding.severity is Severity.PROBLEM
    assert finding.since == ago(121) and "121 s" in finding.message and "120 s" in finding.message


def test_deferred_deliveries_are_a_warning_saying_since_when_and_why() -> None:
    """deliveries_deferred names the count, the first arrival and the reason."""
    finding = only(seen(deferred=3, deferred_since=ago(30), deferred_reason="Frame.io: HTTP 503"))
    assert finding.reason == "deliveries_deferred" and finding.severity is Severity.WARNING
    assert finding.since == ago(30)
    assert "3 deliveries" in finding.message and "HTTP 503" in finding.message


def test_a_stale_deferred_backlog_is_both_a_problem_and_a_warning() -> None:
    """Deferred past the threshold: backlog_stale (problem, first) and deliveries_deferred."""
    found = assess(
        seen(oldest_pending_at=ago(600), deferred=1, deferred_since=ago(600), deferred_reason="x"),
        LIMITS,
    )
    assert [f.reason for f in found] == ["backlog_stale", "deliveries_deferred"]
    assert "1 waits for Frame.io" in found[0].message
    assert verdict(found) is Verdict.UNHEALTHY


@pytest.mark.parametrize(
    ("signin", "reason", "fix"),
    [
        ("refused", "frameio_signin_refused", "client_secret"),
        ("expired", "frameio_signin_expired", "postflow-webhooks auth"),
    ],
)
def test_a_refused_or_expired_frameio_sign_in_is_a_problem_naming_the_fix(
    signin: str, reason: str, fix: str
) -> None:
    """IMS refusing the credential, or a user sign-in that expired: a problem with the fix."""
    view = FrameioView(signin=signin, signin_detail="HTTP 401, invalid_client", signin_since=ago(5))
    finding = only(seen(frameio=view, config_dir="cfg"))
    assert finding.reason == reason and finding.severity is Severity.PROBLEM
    assert fix in finding.message and finding.since == ago(5)
    if signin == "refused":
        assert "cfg/frameio_config.json" in finding.message


def test_a_failing_frameio_api_is_a_warning_since_its_first_failure() -> None:
    """frameio_api_failing: a warning (deliveries wait and are retried), since the first failure."""
    view = FrameioView(signin="ok", failing_since=ago(40), last_error="Frame.io GET /x: HTTP 503")
    finding = only(seen(frameio=view))
    assert finding.reason == "frameio_api_failing" and finding.severity is Severity.WARNING
    assert finding.since == ago(40) and "HTTP 503" in finding.message


def test_signed_in_frameio_with_a_working_api_is_fine() -> None:
    """Sign-in ok and no failure: nothing to say."""
    assert assess(seen(frameio=FrameioView(signin="ok")), LIMITS) == []


def test_a_tunnel_is_a_warning_while_reconnecting_and_a_problem_past_the_threshold() -> None:
    """Not ready for 59 s: tunnel_not_ready (warning); for 61 s: tunnel_down (problem)."""
    info = TunnelInfo(mode="quick", state="restarting", last_error="edge unreachable")
    short = only(seen(tunnel=info, tunnel_down_since=ago(59)))
    long = only(seen(tunnel=info, tunnel_down_since=ago(61)))
    assert (short.reason, short.severity) == ("tunnel_not_ready", Severity.WARNING)
    assert (long.reason, long.severity) == ("tunnel_down", Severity.PROBLEM)
    assert long.message.startswith("tunnel: restarting (edge unreachable)")
    assert long.since == ago(61)


def test_a_ready_tunnel_is_fine() -> None:
    """A ready tunnel gives no finding."""
    ready = TunnelInfo(mode="quick", state="ready", ready=True, public_url="https://a.example")
    assert assess(seen(tunnel=ready, tunnel_down_since=None), LIMITS) == []


def test_a_webhook_that_could_not_be_pointed_at_the_tunnel_is_a_problem() -> None:
    """Registration pending with an error: public_url_not_registered; without one, a warning."""
    failed = RegistrationView(
        pending=True, wanted_url="https://b/frameio-webhook", last_error="404"
    )
    moving = RegistrationView(pending=True, wanted_url="https://b/frameio-webhook")
    done = RegistrationView(pending=False, registered_url="https://b/frameio-webhook")
    assert only(seen(registration=failed)).reason == "public_url_not_registered"
    assert only(seen(registration=failed)).severity is Severity.PROBLEM
    assert only(seen(registration=moving)).reason == "public_url_registering"
    assert only(seen(registration=moving)).severity is Severity.WARNING
    assert assess(seen(registration=done), LIMITS) == []


def test_broken_destinations_quarantine_dead_letters_and_tracker_are_warnings() -> None:
    """Each of these holds something back without losing it: warnings, in a fixed order."""
    found = assess(
        seen(
            discord=DestinationView(broken=True, reason="404 Unknown Webhook", since=ago(9)),
            alerts_destination=DestinationView(broken=True, reason="401"),
            quarantined=2,
            dead_letters=1,
            tracker_error="OSError: read-only",
            signatures_locked=True,
        ),
        LIMITS,
    )
    assert [f.reason for f in found] == [
        "discord_broken",
        "alerts_destination_broken",
        "deliveries_quarantined",
        "notifications_dead_lettered",
        "signatures_locked",
        "tracker_behind",
    ]
    assert all(f.severity is Severity.WARNING for f in found)
    assert "the Discord destination is broken" in found[0].message and found[0].since == ago(9)
    assert "2 deliveries" in found[2].message and "1 message dead-lettered" in found[3].message
    assert verdict(found) is Verdict.DEGRADED and Verdict.DEGRADED.exit_code == 1


def test_problems_come_before_warnings() -> None:
    """The list starts with the problems, whatever produced them."""
    found = assess(seen(quarantined=1, worker_alive=False), LIMITS)
    assert [f.severity for f in found] == [Severity.PROBLEM, Severity.WARNING]
    assert Verdict.UNHEALTHY.exit_code == 2
