"""The signing secret in the shared database, for ``register``, ``unregister`` and ``migrate``.

With ``POSTFLOW_STORE=postgres`` the secret ``register`` gets from Frame.io is
written to the database as well as to ``data/frameio_webhook_secret``, and
every receiver on that database accepts deliveries signed with it within
about a second (``app.sharing``). The secret never appears in a message here.
"""

from __future__ import annotations

import click

from postflow_webhooks.app.settings import Settings
from postflow_webhooks.app.sharing import SECRET_KEY


def shared_database(settings: Settings) -> str | None:
    """The database URL when the store is shared (PostgreSQL), else ``None``."""
    if settings.store == "postgres" and settings.database_url:
        return settings.database_url
    return None


def write_shared_secret(database_url: str, secret: str | None) -> str:
    """Keep ``secret`` in the database (``None``: forget it); the database's label (redacted).

    The tables are created or migrated first, as a receiver would.
    """
    import psycopg

    from postflow_webhooks.adapters.postgres import PostgresDatabase
    from postflow_webhooks.adapters.postgres.failures import first_line
    from postflow_webhooks.adapters.postgres.shared import delete_value, put_value
    from postflow_webhooks.domain.errors import StorageError

    db = PostgresDatabase(database_url, application_name="postflow-webhooks register")
    try:
        db.open()
        with psycopg.connect(db.conninfo) as conn:
            if secret is None:
                delete_value(conn, SECRET_KEY)
            else:
                put_value(conn, SECRET_KEY, secret)
    except StorageError as exc:
        raise click.ClickException(f"the signing secret was not shared: {exc}") from None
    except psycopg.Error as exc:
        raise click.ClickException(
            f"the signing secret was not shared in {db.label}: {first_line(exc)}"
        ) from None
    return db.label
