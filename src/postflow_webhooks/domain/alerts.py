"""Alerts about the receiver itself: an incident starts, an incident ends.

An incident is a finding (``domain/health.py``) that is worth telling people
about; it is open from the moment it is first seen until it has been gone for
a while. Each incident makes two messages at most: one when it starts, one
when it ends.
"""

from __future__ import annotations

import enum
from datetime import datetime

import attrs

# The destination alerts carry when they have a Discord channel of their own.
ALERTS_DESTINATION = "alerts"


class AlertState(enum.Enum):
    """Whether an alert opens or closes its incident."""

    STARTED = "started"
    ENDED = "ended"


@attrs.frozen
class Incident:
    """An open incident: its reason, a title and the words that opened it."""

    reason: str
    title: str
    detail: str
    started_at: datetime


@attrs.frozen
class Alert:
    """The content of one alert message."""

    reason: str
    state: AlertState
    title: str
    detail: str
    started_at: datetime
    ended_at: datetime | None = None
