"""``migrate --to postgres``: copy a SQLite data directory into a PostgreSQL database.

The receiver must be stopped (the data directory lock is taken). Everything
in the file is copied in one PostgreSQL transaction: deliveries (pending,
processed, quarantined), counters, records, the outbox with its dead letters
and each notification's destination, the destinations' state, the replay keys
(accepted signatures) and the marks (open incidents included), and the
signing secret ``register`` stored in the directory, if any, so every receiver
on the database accepts it. Then the SQLite file is marked as moved, and
a receiver started on it refuses to start, saying where the data went.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from postflow_webhooks.app.cli.common import emit_json, pairs

STORED_SECRET = "frameio_webhook_secret"


def register(group: click.Group, settings_for: Any) -> None:
    """Add ``migrate`` to the CLI group."""

    @group.command()
    @click.option(
        "--to",
        "target",
        type=click.Choice(["postgres"]),
        required=True,
        help="The store to move to.",
    )
    @click.option(
        "--database-url",
        default=None,
        help="postgresql://USER[:PASSWORD]@HOST[:PORT]/DB (default: POSTFLOW_DATABASE_URL).",
    )
    @click.option(
        "--data-dir",
        type=click.Path(path_type=Path),
        default=None,
        help="The SQLite data directory to copy (default: the configured one).",
    )
    @click.option(
        "--replace",
        is_flag=True,
        help="Delete what the PostgreSQL database already holds before copying.",
    )
    @click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
    def migrate(
        target: str,
        database_url: str | None,
        data_dir: Path | None,
        replace: bool,
        as_json: bool,
    ) -> None:
        """Copy a SQLite data directory into PostgreSQL; the directory is then refused by serve."""
        settings = settings_for({"data_dir": data_dir, "database_url": database_url})
        if not settings.database_url:
            raise click.ClickException(
                "no database URL: give --database-url or set POSTFLOW_DATABASE_URL"
            )
        report = copy_to_postgres(settings.data_dir, settings.database_url, replace=replace)
        if as_json:
            emit_json(report)
            return
        copied = report["copied"]
        click.echo(f"copied {report['source']} into {report['target']}:")
        click.echo(
            pairs(
                [
                    ("deliveries", _split(copied["deliveries"], report["deliveries_by_state"])),
                    ("records", copied["uploads"]),
                    ("counters", copied["counters"]),
                    (
                        "notifications",
                        _split(copied["notifications"], report["notifications_by_state"]),
                    ),
                    ("destinations", copied["destinations"]),
                    ("replay keys", copied["accepted_signatures"]),
                    ("marks", copied["meta"]),
                    ("secret", "copied" if report["secret_copied"] else "none"),
                ]
            )
        )
        click.echo(
            f"{report['source']} is now marked as moved: a receiver started on it refuses to "
            "start. Start the receivers with POSTFLOW_STORE=postgres and POSTFLOW_DATABASE_URL."
        )


def _split(total: int, by_state: dict[str, int]) -> str:
    detail = ", ".join(f"{n} {state}" for state, n in sorted(by_state.items()))
    return f"{total} ({detail})" if detail else str(total)


def copy_to_postgres(data_dir: Path, database_url: str, *, replace: bool) -> dict[str, Any]:
    """Copy the data directory's database into PostgreSQL, mark it moved; what was copied."""
    import psycopg

    from postflow_webhooks.adapters.frameio.webhooks import SecretFile
    from postflow_webhooks.adapters.postgres import PostgresDatabase
    from postflow_webhooks.adapters.postgres.load import load_tables
    from postflow_webhooks.adapters.postgres.shared import put_value
    from postflow_webhooks.adapters.sqlite import DATABASE_NAME
    from postflow_webhooks.adapters.sqlite.connection import open_database
    from postflow_webhooks.adapters.sqlite.export import export_tables, mark_moved
    from postflow_webhooks.app.datadir import DataDirectoryError, DataDirectoryLock
    from postflow_webhooks.app.sharing import SECRET_KEY
    from postflow_webhooks.domain.errors import StorageError

    path = data_dir / DATABASE_NAME
    if not path.exists():
        raise click.ClickException(f"no database to copy: {path} does not exist")
    lock = DataDirectoryLock(data_dir)
    try:
        lock.acquire()
    except DataDirectoryError as exc:
        raise click.ClickException(f"{exc.problem}: stop it before migrating") from None
    try:
        source = open_database(path)
        try:
            tables = export_tables(source)
            target = PostgresDatabase(database_url)
            target.open()
            with psycopg.connect(target.conninfo) as conn:
                copied = load_tables(conn, target.label, tables, replace=replace)
                if replace:  # the registrar's status and secret of what was there
                    conn.execute("DELETE FROM shared_state")
                secret = SecretFile(data_dir / STORED_SECRET).load()
                if secret is not None:  # in the same transaction as the rest
                    put_value(conn, SECRET_KEY, secret)
            mark_moved(source, target.label, datetime.now(UTC))
        finally:
            source.close()
    except StorageError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        lock.release()
    return {
        "source": str(path),
        "target": target.label,
        "copied": copied,
        "secret_copied": secret is not None,
        "deliveries_by_state": dict(Counter(r["state"] for r in tables.get("deliveries", []))),
        "notifications_by_state": dict(
            Counter(r["state"] for r in tables.get("notifications", []))
        ),
    }
