"""What the receiver finds wrong with itself: findings, each a problem or a warning.

The rule (documented in ``docs/operations.md``, "Watching it"): a **problem**
means deliveries are being lost or are not being applied, so ``/health``
answers 503; a **warning** means something is late, held or needs a person,
but nothing is lost yet, so ``/health`` answers 200 and says ``degraded``.
Each finding has a stable machine-readable ``reason`` and a message in words
that names the fix.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from datetime import datetime

import attrs


class Severity(enum.Enum):
    """How bad a finding is."""

    PROBLEM = "problem"
    WARNING = "warning"


@attrs.frozen
class Finding:
    """One thing wrong, by reason, in words, and since when (when known)."""

    reason: str
    severity: Severity
    message: str
    since: datetime | None = None


class Verdict(enum.Enum):
    """The receiver's health in one word."""

    OK = "ok"
    DEGRADED = "degraded"
    UNHEALTHY = "unhealthy"

    @property
    def exit_code(self) -> int:
        """0, 1 or 2: what ``postflow-webhooks healthcheck`` exits with."""
        return {Verdict.OK: 0, Verdict.DEGRADED: 1, Verdict.UNHEALTHY: 2}[self]


def verdict(findings: Iterable[Finding]) -> Verdict:
    """Unhealthy with any problem, degraded with only warnings, else ok."""
    severities = {finding.severity for finding in findings}
    if Severity.PROBLEM in severities:
        return Verdict.UNHEALTHY
    if Severity.WARNING in severities:
        return Verdict.DEGRADED
    return Verdict.OK
