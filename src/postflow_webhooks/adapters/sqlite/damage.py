"""Refusing a database file that cannot be used, with one message that names it and the fix.

Checked at start, before the port is bound: the file must open, its layout
must be one this release knows, and every page must read (``PRAGMA
quick_check``, a full read of the file that takes well under a second for
100 MB). Nothing is written to a file that fails.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from postflow_webhooks.domain.errors import StorageError

FIX = (
    "If it is damaged, move it aside (keep it: sqlite3's .recover may save its "
    "contents) and start again with a new, empty database"
)


def unusable(path: Path, problem: object) -> StorageError:
    """The error for a database file that cannot be used: the file, the problem, the fix."""
    return StorageError(
        f"cannot use the database {path}: {problem}. The file was left untouched. {FIX}."
    )


def check_pages(conn: sqlite3.Connection, path: Path, schema: str = "main") -> None:
    """Read every page of ``schema``; ``StorageError`` naming ``path`` when one is damaged."""
    try:
        rows = conn.execute(f"PRAGMA {schema}.quick_check(1)").fetchall()
    except sqlite3.Error as exc:
        raise unusable(path, exc) from exc
    if rows != [("ok",)]:
        found = " ".join(str(rows[0][0]).split()) if rows else "no answer"
        raise unusable(path, f"damaged pages: {found}")
