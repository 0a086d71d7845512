"""Values as the database stores them: times, record rows, notification rows."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime

from postflow_webhooks.adapters.serialization import dump_notification, dump_record
from postflow_webhooks.domain.records import Notification, UploadRecord

# file_id, name, status name, last change, record JSON (the revision is added on write)
RecordRow = tuple[str, str | None, str | None, float, str]


def stamp(moment: datetime) -> float:
    """A moment as stored: Unix seconds."""
    return moment.timestamp()


def moment(value: float) -> datetime:
    """A stored time as an aware UTC moment."""
    return datetime.fromtimestamp(value, UTC)


def optional_moment(value: float | None) -> datetime | None:
    """``moment`` for a column that may be empty."""
    return None if value is None else moment(value)


def record_rows(records: Sequence[UploadRecord]) -> list[RecordRow]:
    """Rows of the ``uploads`` table for these records (serialised before the transaction)."""
    return [
        (r.file_id, r.name, r.status.name if r.status else None, r.last_change, dump_record(r))
        for r in records
    ]


def write_record_rows(conn: sqlite3.Connection, rows: Sequence[RecordRow]) -> None:
    """Create or replace ``uploads`` rows, each with the next revision (in the caller's transaction).

    Revisions number record changes in commit order, one per row, so PostFlow's
    tracker can be brought up to date from a mark (``TrackerFeed``).
    """
    if not rows:
        return
    base = int(conn.execute("SELECT coalesce(max(revision), 0) FROM uploads").fetchone()[0])
    conn.executemany(
        "INSERT INTO uploads (file_id, name, status, updated_at, record, revision) "
        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (file_id) DO UPDATE SET "
        "name = excluded.name, status = excluded.status, updated_at = excluded.updated_at, "
        "record = excluded.record, revision = excluded.revision",
        [(*row, base + index) for index, row in enumerate(rows, start=1)],
    )


def upsert_records(conn: sqlite3.Connection, records: Sequence[UploadRecord]) -> None:
    """``write_record_rows`` for records (in the caller's transaction)."""
    write_record_rows(conn, record_rows(records))


NotificationRow = tuple[str, str, float]


def notification_rows(notifications: Sequence[Notification]) -> list[NotificationRow]:
    """Rows of the ``notifications`` table (their ids are given by the table)."""
    return [(n.file_id, dump_notification(n), stamp(n.at)) for n in notifications]
