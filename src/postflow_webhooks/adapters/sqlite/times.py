"""Times as the databases store them: Unix seconds (REAL), so they sort as numbers."""

from __future__ import annotations

from datetime import UTC, datetime


def stamp(moment: datetime) -> float:
    """A moment as stored."""
    return moment.timestamp()


def moment(value: float) -> datetime:
    """A stored time as an aware UTC moment."""
    return datetime.fromtimestamp(value, UTC)


def optional_moment(value: float | None) -> datetime | None:
    """``moment`` for a column that may be empty."""
    return None if value is None else moment(value)
