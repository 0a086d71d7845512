"""``doctor``'s database line: reachable, and a layout this release can use.

With SQLite it reads the data directory's file (read only); with PostgreSQL it
connects with the configured URL (shown without its password) and reads the
layout version. Nothing is created or migrated: the first receiver to start
does that. A layout newer than this release knows is the fix to report.
"""

from __future__ import annotations

from postflow_webhooks.adapters.sqlite import DATABASE_NAME
from postflow_webhooks.adapters.sqlite import schema as sqlite_schema
from postflow_webhooks.app.settings import Settings
from postflow_webhooks.domain.errors import StorageError

Check = tuple[str, bool, str]


def _layout(name: str, found: int, latest: int, fix: str) -> Check:
    if found > latest:
        return (
            "database",
            False,
            f"{name} was written by a newer release (layout version {found}; this release knows "
            f"up to {latest}): {fix}",
        )
    if found == latest:
        return ("database", True, f"{name} (layout version {found})")
    return (
        "database",
        True,
        f"{name} (layout version {found}; the next receiver to start migrates it to {latest})",
    )


def check_store(settings: Settings) -> Check:
    """The configured database answers and its layout is not newer than this release."""
    if settings.store == "postgres":
        from postflow_webhooks.adapters.postgres import PostgresDatabase
        from postflow_webhooks.adapters.postgres import schema as pg_schema

        if not settings.database_url:
            return ("database", False, "store is postgres but POSTFLOW_DATABASE_URL is not set")
        try:
            db = PostgresDatabase(settings.database_url)
            found = pg_schema.inspect_layout(db.conninfo, db.label)
        except StorageError as exc:
            return (
                "database",
                False,
                f"{exc}; check that PostgreSQL runs there and that POSTFLOW_DATABASE_URL "
                "(or --database-url) is right",
            )
        if found == 0:
            return (
                "database",
                True,
                f"PostgreSQL {db.label} answers; no tables yet (the first receiver creates "
                f"layout version {pg_schema.LATEST})",
            )
        fix = "upgrade postflow-webhooks on this machine, or point it at another database"
        return _layout(f"PostgreSQL {db.label}", found, pg_schema.LATEST, fix)
    path = settings.data_dir / DATABASE_NAME
    try:
        version = sqlite_schema.inspect_layout(path)
    except StorageError as exc:
        return ("database", False, str(exc))
    if version is None:
        return ("database", True, f"SQLite {path} not created yet (the receiver creates it)")
    fix = "upgrade postflow-webhooks, or use another --data-dir"
    return _layout(f"SQLite {path}", version, sqlite_schema.LATEST, fix)
