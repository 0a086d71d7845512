"""PostgreSQL: one database shared by several receivers, and the roles they share out."""

from postflow_webhooks.adapters.postgres.connection import DEAD_PEER_SECONDS, redact
from postflow_webhooks.adapters.postgres.database import OUTBOX_CHANNEL, PostgresDatabase
from postflow_webhooks.adapters.postgres.incidents import PostgresIncidents
from postflow_webhooks.adapters.postgres.ingress import DELIVERIES_CHANNEL
from postflow_webhooks.adapters.postgres.journal import PostgresJournal
from postflow_webhooks.adapters.postgres.outbox import PostgresOutbox
from postflow_webhooks.adapters.postgres.records import PostgresRecords
from postflow_webhooks.adapters.postgres.roles import PostgresRoles
from postflow_webhooks.adapters.postgres.shared import PostgresSharedState
from postflow_webhooks.adapters.postgres.watch import PostgresWatch

__all__ = [
    "DEAD_PEER_SECONDS",
    "DELIVERIES_CHANNEL",
    "OUTBOX_CHANNEL",
    "PostgresDatabase",
    "PostgresIncidents",
    "PostgresJournal",
    "PostgresOutbox",
    "PostgresRecords",
    "PostgresRoles",
    "PostgresSharedState",
    "PostgresWatch",
    "redact",
]
