"""The database layout and its migrations, numbered by ``PRAGMA user_version``.

Times are Unix seconds (REAL), so they sort as numbers. ``MIGRATIONS[n]``
takes a database at version ``n - 1`` to version ``n``; a new database runs
them all, so there is one way a layout comes to be. Release 0.1.0 set no
version: a file with a ``deliveries`` table and version 0 is at version 1.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from pathlib import Path

from postflow_webhooks.adapters.serialization import load_record
from postflow_webhooks.adapters.sqlite.damage import check_pages
from postflow_webhooks.adapters.sqlite.rows import upsert_records
from postflow_webhooks.domain.errors import StorageError

log = logging.getLogger("postflow_webhooks.storage")

# Release 0.1.0's state file, exactly (the inbox file it also kept is merged by version 2).
_VERSION_1 = """
CREATE TABLE IF NOT EXISTS deliveries (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id  TEXT NOT NULL,
    received_at  REAL NOT NULL,
    event_type   TEXT NOT NULL,
    file_id      TEXT,
    body         BLOB NOT NULL,
    signed       INTEGER NOT NULL DEFAULT 0,
    state        TEXT NOT NULL DEFAULT 'pending',
    attempts     INTEGER NOT NULL DEFAULT 0,
    not_before   REAL,
    last_error   TEXT,
    processed_at REAL
);
CREATE INDEX IF NOT EXISTS deliveries_pending ON deliveries (seq) WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS deliveries_waiting ON deliveries (file_id, seq)
    WHERE state = 'pending' AND not_before IS NOT NULL;
CREATE INDEX IF NOT EXISTS deliveries_processed ON deliveries (processed_at)
    WHERE state = 'processed';
CREATE INDEX IF NOT EXISTS deliveries_quarantined ON deliveries (seq)
    WHERE state = 'quarantined';
CREATE TABLE IF NOT EXISTS counters (
    kind  TEXT NOT NULL,
    key   TEXT NOT NULL,
    value INTEGER NOT NULL,
    PRIMARY KEY (kind, key)
);
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS notifications (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    file_id    TEXT NOT NULL,
    state      TEXT NOT NULL DEFAULT 'pending',
    body       TEXT NOT NULL,
    created_at REAL NOT NULL,
    settled_at REAL,
    reason     TEXT
);
CREATE INDEX IF NOT EXISTS notifications_by_state ON notifications (state, id);
CREATE TABLE IF NOT EXISTS destinations (
    key    TEXT PRIMARY KEY,
    broken INTEGER NOT NULL,
    reason TEXT,
    since  REAL
);
CREATE TABLE IF NOT EXISTS tracker_writes (
    file_id TEXT PRIMARY KEY,
    record  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS uploads (
    file_id    TEXT PRIMARY KEY,
    name       TEXT,
    status     TEXT,
    updated_at REAL NOT NULL,
    record     TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS uploads_by_status ON uploads (status, updated_at);
CREATE INDEX IF NOT EXISTS uploads_by_time ON uploads (updated_at);
"""


def inbox_path(path: Path) -> Path:
    """Release 0.1.0's inbox file next to the database (``postflow-inbox.sqlite3``)."""
    return path.with_name(f"{path.stem}-inbox{path.suffix}")


def _version_1(conn: sqlite3.Connection, path: Path) -> None:
    # One statement at a time: ``executescript`` would commit the migration's transaction.
    for statement in _VERSION_1.split(";"):
        if statement.strip():
            conn.execute(statement)


def _version_2(conn: sqlite3.Connection, path: Path) -> None:
    """One file: the 0.1.0 inbox merged in, records numbered for PostFlow's tracker."""
    conn.execute("ALTER TABLE uploads ADD COLUMN revision INTEGER NOT NULL DEFAULT 0")
    conn.execute("CREATE INDEX uploads_by_revision ON uploads (revision)")
    # Records 0.1.0 had committed for the JSON or PostFlow tracker and not yet written
    # there: they are the newest, and still to be written to the tracker.
    pending = [load_record(text) for (text,) in conn.execute("SELECT record FROM tracker_writes")]
    upsert_records(conn, pending)
    conn.execute("DROP TABLE tracker_writes")
    if _is_attached(conn, "inbox"):
        mark = _inbox_mark(conn)
        conn.execute(
            "INSERT INTO deliveries (seq, delivery_id, received_at, event_type, file_id, body, "
            "signed) SELECT seq, delivery_id, received_at, event_type, file_id, body, signed "
            "FROM inbox.deliveries WHERE seq > ? ORDER BY seq",
            (mark,),
        )
        conn.execute(
            "INSERT INTO counters (kind, key, value) SELECT kind, key, value FROM inbox.counters "
            "WHERE true ON CONFLICT (kind, key) DO UPDATE SET value = value + excluded.value"
        )
    conn.execute("DELETE FROM meta WHERE key = 'inbox_seq'")


def _inbox_mark(conn: sqlite3.Connection) -> int:
    """The last inbox row 0.1.0 had copied into the state file."""
    row = conn.execute("SELECT value FROM meta WHERE key = 'inbox_seq'").fetchone()
    if row is not None:
        return int(row[0])
    row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'deliveries'").fetchone()
    return int(row[0]) if row is not None else 0


def _is_attached(conn: sqlite3.Connection, name: str) -> bool:
    return any(row[1] == name for row in conn.execute("PRAGMA database_list"))


def _version_3(conn: sqlite3.Connection, path: Path) -> None:
    """Replay protection: the signed requests accepted within the signature window."""
    # Keyed by time first: each commit appends near the end of the tree instead of
    # touching a random page per delivery, and pruning deletes a prefix.
    conn.execute(
        "CREATE TABLE accepted_signatures ("
        " timestamp INTEGER NOT NULL, signature BLOB NOT NULL, delivery_id TEXT NOT NULL,"
        " PRIMARY KEY (timestamp, signature)) WITHOUT ROWID"
    )


def _version_4(conn: sqlite3.Connection, path: Path) -> None:
    """Notification destinations: each notification's route, readable and indexed.

    The route is part of the notification's body (``"destination"``); the column is
    computed from it, so the worker's commit writes nothing new, and rows queued
    before this version read as ``default``.
    """
    conn.execute(
        "ALTER TABLE notifications ADD COLUMN destination TEXT GENERATED ALWAYS AS "
        "(coalesce(json_extract(body, '$.destination'), 'default')) VIRTUAL"
    )
    conn.execute(
        "CREATE INDEX notifications_by_destination ON notifications (state, destination, id)"
    )


Migration = Callable[[sqlite3.Connection, Path], None]
MIGRATIONS: dict[int, Migration] = {1: _version_1, 2: _version_2, 3: _version_3, 4: _version_4}
LATEST = max(MIGRATIONS)


def schema_version(conn: sqlite3.Connection) -> int:
    """The layout version of an open database (0.1.0's files count as 1)."""
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if (
        version == 0
        and conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'deliveries'"
        ).fetchone()
    ):
        return 1
    return version


def migrate(conn: sqlite3.Connection, path: Path) -> None:
    """Bring the database to ``LATEST``, one transaction per step; refuse a newer one."""
    version = schema_version(conn)
    if version > LATEST:
        raise StorageError(
            f"the database {path} was written by a newer release of postflow-webhooks "
            f"(layout version {version}; this release knows up to {LATEST}). Upgrade "
            "postflow-webhooks, or start this release with another --data-dir."
        )
    if version == LATEST:
        return
    fresh = version == 0
    inbox = inbox_path(path)
    merging = version < 2 and inbox.exists()
    if merging:
        conn.execute("ATTACH DATABASE ? AS inbox", (str(inbox),))
    try:
        if merging:
            check_pages(conn, inbox, "inbox")
        for number in range(version + 1, LATEST + 1):
            conn.execute("BEGIN IMMEDIATE")
            try:
                MIGRATIONS[number](conn, path)
                conn.execute(f"PRAGMA user_version = {number}")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            if not fresh:
                log.info("database %s migrated to layout version %d", path, number)
    finally:
        if merging:
            conn.execute("DETACH DATABASE inbox")
    if fresh:
        log.info("created the database %s (layout version %d)", path, LATEST)
    if merging:
        _retire(inbox)


def _retire(inbox: Path) -> None:
    """Rename the merged 0.1.0 inbox file aside; it is never read again."""
    checkpoint = sqlite3.connect(inbox)
    try:
        checkpoint.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        checkpoint.close()
    retired = inbox.with_name(inbox.name + ".merged")
    inbox.replace(retired)
    for suffix in ("-wal", "-shm"):
        inbox.with_name(inbox.name + suffix).unlink(missing_ok=True)
    log.info("merged %s into the database; the old file is kept as %s", inbox.name, retired.name)


def inspect_layout(path: Path) -> int | None:
    """The layout version of a database file, read only (``None``: no file yet)."""
    if not path.exists():
        return None
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            return schema_version(conn)
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise StorageError(f"cannot read the database {path}: {exc}") from None
