"""Listing records held in memory: filter by status, newest first, one page."""

from __future__ import annotations

from collections.abc import Iterable

from postflow_webhooks.domain.records import UploadRecord
from postflow_webhooks.domain.statuses import PostflowStatus


def of_status(records: Iterable[UploadRecord], status: PostflowStatus | None) -> list[UploadRecord]:
    """The records of ``status`` (all of them when ``None``)."""
    return [r for r in records if status is None or r.status is status]


def newest_first(
    records: Iterable[UploadRecord], status: PostflowStatus | None, offset: int, limit: int
) -> list[UploadRecord]:
    """One page of the records of ``status``, most recently changed first."""
    found = of_status(records, status)
    found.sort(key=lambda r: (r.last_change, r.file_id), reverse=True)
    return found[offset : offset + limit]
