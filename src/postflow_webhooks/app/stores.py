"""Choosing the store: SQLite in the data directory, or one PostgreSQL database shared by many.

``build_store`` returns the configured database by role (journal, records,
outbox, incident log, the watch's reads) and how the background roles are
shared out: with SQLite the one receiver holds every role (``SoleRoles``);
with PostgreSQL an advisory lock per role decides (``PostgresRoles``), and a
commit anywhere wakes the holder through ``LISTEN/NOTIFY`` (``listen``).
Nothing is opened here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import attrs

from postflow_webhooks.adapters.sqlite import (
    SqliteDatabase,
    SqliteJournal,
    SqliteOutbox,
    SqliteRecords,
)
from postflow_webhooks.adapters.sqlite.incidents import SqliteIncidents
from postflow_webhooks.adapters.sqlite.watch import SqliteWatch
from postflow_webhooks.app.policies import Policies
from postflow_webhooks.app.roles import SoleRoles
from postflow_webhooks.app.settings import Settings, SettingsError, shared_store_problem

if TYPE_CHECKING:  # imported only when PostgreSQL is configured (psycopg is heavy)
    from postflow_webhooks.adapters import postgres


@attrs.frozen
class Store:
    """The configured database, by role, and how the roles are shared out."""

    storage: SqliteDatabase | postgres.PostgresDatabase
    journal: SqliteJournal | postgres.PostgresJournal
    records: SqliteRecords | postgres.PostgresRecords
    outbox: SqliteOutbox | postgres.PostgresOutbox
    incidents: SqliteIncidents | postgres.PostgresIncidents
    watch: SqliteWatch | postgres.PostgresWatch
    roles: SoleRoles | postgres.PostgresRoles
    label: str
    shared: bool = False
    """True when several receivers may use this database at once."""
    shared_state: postgres.PostgresSharedState | None = None
    """Where the registrar's status and the signing secret are shared (``None``: SQLite)."""

    def listen(self, deliveries: Callable[[], None], outbox: Sequence[Callable[[], None]]) -> None:
        """Call ``deliveries`` on every committed delivery and ``outbox`` on every queued message.

        Commits made by this process already ring their parts directly; with a
        shared database, those of the other receivers ring through NOTIFY.
        """
        if isinstance(self.roles, SoleRoles):
            return
        from postflow_webhooks.adapters.postgres import DELIVERIES_CHANNEL, OUTBOX_CHANNEL

        self.roles.on_notify(DELIVERIES_CHANNEL, deliveries)
        for wake in outbox:
            self.roles.on_notify(OUTBOX_CHANNEL, wake)


def build_store(settings: Settings, policies: Policies) -> Store:
    """SQLite in the data directory, or the shared PostgreSQL database; nothing opened yet."""
    problem = shared_store_problem(settings)
    if problem is not None:
        raise SettingsError(problem[0], "configuration", problem[1])
    if settings.store == "postgres" and settings.database_url:
        from postflow_webhooks.adapters import postgres

        pg = postgres.PostgresDatabase(settings.database_url)
        roles = postgres.PostgresRoles(pg.conninfo, pg.label, reconnect=policies.store_reconnect)
        return Store(
            storage=pg,
            journal=postgres.PostgresJournal(pg),
            records=postgres.PostgresRecords(pg),
            outbox=postgres.PostgresOutbox(pg),
            incidents=postgres.PostgresIncidents(pg),
            watch=postgres.PostgresWatch(pg),
            roles=roles,
            label=pg.label,
            shared=True,
            shared_state=postgres.PostgresSharedState(pg),
        )
    db = SqliteDatabase.in_directory(settings.data_dir)
    return Store(
        storage=db,
        journal=SqliteJournal(db),
        records=SqliteRecords(db),
        outbox=SqliteOutbox(db),
        incidents=SqliteIncidents(db),
        watch=SqliteWatch(db),
        roles=SoleRoles(),
        label=str(db.path),
    )
