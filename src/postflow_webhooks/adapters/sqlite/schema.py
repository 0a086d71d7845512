"""The database layouts. Times are Unix seconds (REAL), so they sort as numbers.

Two files: the inbox, which only the receiver writes (accepted deliveries and
its counters), and the state, which the worker writes (deliveries as it
processes them, tracked files, notifications). A worker in its own process
thus never holds a lock the receiver needs to answer.
"""

# What an accepted delivery is, in both files; the state adds how it was processed.
_DELIVERY = """
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id  TEXT NOT NULL,
    received_at  REAL NOT NULL,
    event_type   TEXT NOT NULL,
    file_id      TEXT,
    body         BLOB NOT NULL,
    signed       INTEGER NOT NULL DEFAULT 0"""

# The receiver's counters; a state database from before the inbox has them too.
_COUNTERS = """
CREATE TABLE IF NOT EXISTS counters (
    kind  TEXT NOT NULL,
    key   TEXT NOT NULL,
    value INTEGER NOT NULL,
    PRIMARY KEY (kind, key)
);
"""

INBOX_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS deliveries ({_DELIVERY}
);
{_COUNTERS}"""

SCHEMA = """
CREATE TABLE IF NOT EXISTS deliveries (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id  TEXT NOT NULL,
    received_at  REAL NOT NULL,
    event_type   TEXT NOT NULL,
    file_id      TEXT,
    body         BLOB NOT NULL,
    signed       INTEGER NOT NULL DEFAULT 0
);
{_COUNTERS}"""

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS deliveries ({_DELIVERY},
    state        TEXT NOT NULL DEFAULT 'pending',
    attempts     INTEGER NOT NULL DEFAULT 0,
    not_before   REAL,
    last_error   TEXT,
    processed_at REAL
);
-- Partial indexes: a row leaves them once processed or no longer waiting, so
-- the steady state costs little to maintain.
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
