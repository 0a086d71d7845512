"""Loading a whole store into PostgreSQL, for ``postflow-webhooks migrate``.

The input is the neutral form ``adapters.sqlite.export`` produces: each table's
rows as dicts of plain values, with the same table and column names as here.
Everything is written in one transaction: the target ends up with all of it
or none of it. Numbers (delivery seq, notification id, record revision) are
kept, and the sequences continue above them. A notification without a
``destination`` value (a source older than destinations) goes to ``default``,
or to the destination its body names.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import psycopg

from postflow_webhooks.adapters.postgres.connection import nul_safe, storage_error
from postflow_webhooks.domain.errors import StorageError

# Load order and the columns copied; the tables ``TRUNCATE`` empties with --replace.
TABLES: dict[str, tuple[str, ...]] = {
    "deliveries": (
        "seq",
        "delivery_id",
        "received_at",
        "event_type",
        "file_id",
        "body",
        "signed",
        "state",
        "attempts",
        "not_before",
        "last_error",
        "processed_at",
    ),
    "counters": ("kind", "key", "value"),
    "meta": ("key", "value"),
    "notifications": (
        "id",
        "file_id",
        "destination",
        "state",
        "body",
        "created_at",
        "settled_at",
        "reason",
    ),
    "destinations": ("key", "broken", "reason", "since"),
    "uploads": ("file_id", "name", "status", "updated_at", "record", "revision"),
    "accepted_signatures": ("timestamp", "signature", "delivery_id"),
}
IDENTITIES = {"deliveries": "seq", "notifications": "id"}


def row_counts(conn: psycopg.Connection[Any]) -> dict[str, int]:
    """How many rows each of our tables holds."""
    return {
        name: int(conn.execute(f"SELECT count(*) FROM {name}").fetchone()[0])  # type: ignore[index]
        for name in TABLES
    }


def _destination(row: Mapping[str, Any]) -> str:
    """A notification row's destination: its own column, else what its body says."""
    if row.get("destination"):
        return str(row["destination"])
    try:
        named = json.loads(row.get("body") or "{}").get("destination")
    except (ValueError, AttributeError):
        named = None
    return str(named) if named else "default"


def _value(name: str, row: Mapping[str, Any], column: str) -> Any:
    if name == "notifications" and column == "destination":
        return _destination(row)
    return row.get(column)


def load_tables(
    conn: psycopg.Connection[Any],
    label: str,
    tables: Mapping[str, Sequence[Mapping[str, Any]]],
    *,
    replace: bool,
) -> dict[str, int]:
    """Copy ``tables`` in, in one transaction; refuse a non-empty target unless ``replace``."""
    unknown = sorted(set(tables) - set(TABLES))
    if unknown:
        raise StorageError(
            f"the source has tables this release cannot load into PostgreSQL: {', '.join(unknown)}"
        )
    nul_safe(conn)
    try:
        with conn.transaction():
            held = {name: n for name, n in row_counts(conn).items() if n}
            if held and not replace:
                listed = ", ".join(f"{n} {name}" for name, n in held.items())
                raise StorageError(
                    f"the database {label} is not empty ({listed}). Nothing was copied. Point "
                    "--database-url at an empty database, or add --replace to delete what it "
                    "holds first"
                )
            if held:
                conn.execute(f"TRUNCATE {', '.join(TABLES)}")
            copied = {}
            for name, columns in TABLES.items():
                rows = tables.get(name, ())
                copied[name] = len(rows)
                with (
                    conn.cursor() as cur,
                    cur.copy(f"COPY {name} ({', '.join(columns)}) FROM STDIN") as copy,
                ):
                    for row in rows:
                        copy.write_row([_value(name, row, column) for column in columns])
            for name, column in IDENTITIES.items():
                conn.execute(
                    f"SELECT setval(pg_get_serial_sequence('{name}', '{column}'), "
                    f"coalesce((SELECT max({column}) FROM {name}), 0) + 1, false)"
                )
            conn.execute(
                "SELECT setval('uploads_revision', "
                "coalesce((SELECT max(revision) FROM uploads), 0) + 1, false)"
            )
    except psycopg.Error as exc:
        raise storage_error(label, exc) from exc
    return copied
