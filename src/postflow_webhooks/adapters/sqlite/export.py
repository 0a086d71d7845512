"""Reading a whole database file out, for ``postflow-webhooks migrate``; and the moved mark.

``export_tables`` returns every table's rows as dicts of plain values (times as
aware UTC datetimes, flags as booleans), the neutral form another store can
load. Once the data is copied, ``mark_moved`` records where it went, and
``open_database`` refuses the file from then on, saying where to look.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Any

from postflow_webhooks.adapters.sqlite.rows import moment
from postflow_webhooks.domain.errors import StorageError

MOVED_KEY = "moved_to"
# Marks of this file only, not data: where it moved, and a health probe's scratch row.
LOCAL_KEYS = frozenset({MOVED_KEY, "commit_probe"})
TIME_COLUMNS = frozenset(
    {"received_at", "not_before", "processed_at", "created_at", "settled_at", "since", "updated_at"}
)
FLAG_COLUMNS = frozenset({"signed", "broken"})
Rows = list[dict[str, Any]]


def _plain(column: str, value: Any) -> Any:
    if value is None:
        return None
    if column in TIME_COLUMNS:
        return moment(value)
    if column in FLAG_COLUMNS:
        return bool(value)
    if isinstance(value, memoryview):
        return bytes(value)
    return value


def export_tables(conn: sqlite3.Connection) -> dict[str, Rows]:
    """Every table of ours, each row a dict of plain values, in key order."""
    names = [
        row[0]
        for row in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' "
            "AND name NOT LIKE 'sqlite_%' ORDER BY name"
        )
    ]
    tables: dict[str, Rows] = {}
    for name in names:
        try:
            cur = conn.execute(f'SELECT * FROM "{name}" ORDER BY rowid')
        except sqlite3.OperationalError:  # a WITHOUT ROWID table: its key order
            cur = conn.execute(f'SELECT * FROM "{name}"')
        columns = [d[0] for d in cur.description]
        rows = [dict(zip(columns, row, strict=True)) for row in cur]
        if name == "meta":
            rows = [row for row in rows if row["key"] not in LOCAL_KEYS]
        tables[name] = [{c: _plain(c, v) for c, v in row.items()} for row in rows]
    return tables


def mark_moved(conn: sqlite3.Connection, where: str, at: datetime) -> None:
    """Record that the data now lives in ``where`` (a redacted name); the file is refused after."""
    value = json.dumps({"where": where, "at": at.isoformat()})
    with conn:
        conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (MOVED_KEY, value),
        )


def moved_to(conn: sqlite3.Connection) -> dict[str, str] | None:
    """Where the data was moved, when it was (``where`` and ``at``)."""
    try:
        row = conn.execute("SELECT value FROM meta WHERE key = ?", (MOVED_KEY,)).fetchone()
    except sqlite3.OperationalError:  # no meta table: a new or foreign file
        return None
    return dict(json.loads(row[0])) if row else None


def refuse_if_moved(conn: sqlite3.Connection, path: Path) -> None:
    """``StorageError`` saying where the data went, when ``migrate`` moved it away."""
    moved = moved_to(conn)
    if moved is None:
        return
    raise StorageError(
        f"the database {path} was moved to PostgreSQL ({moved.get('where')}) on "
        f"{moved.get('at')} by 'postflow-webhooks migrate'. Start the receiver with "
        "POSTFLOW_STORE=postgres and POSTFLOW_DATABASE_URL pointing at that database "
        "(or --store postgres --database-url ...); this file is kept only as a backup"
    )
