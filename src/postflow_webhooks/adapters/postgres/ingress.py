"""The receivers' writes in PostgreSQL: accepted deliveries (counted), refusals and replays.

One batch is one transaction. A signed delivery whose (timestamp, signature)
pair was already accepted, by this receiver or any other, is a replay: it is
not stored, is counted as a duplicate, and its result is the first delivery's
id. Two receivers taking the same pair at once cannot both store it: the
second one's insert waits for the first's commit and then finds the row.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg

from postflow_webhooks.adapters.sql import sort_ingress
from postflow_webhooks.domain.journal import IncomingDelivery

Conn = psycopg.AsyncConnection[Any]
Item = IncomingDelivery | str

DELIVERIES_CHANNEL = "postflow_deliveries"

BUMP = (
    "INSERT INTO counters (kind, key, value) VALUES (%s, %s, %s) "
    "ON CONFLICT (kind, key) DO UPDATE SET value = counters.value + excluded.value"
)
_REMEMBER = (
    "INSERT INTO accepted_signatures (timestamp, signature, delivery_id) "
    "SELECT * FROM unnest(%s::bigint[], %s::bytea[], %s::text[]) "
    "ON CONFLICT DO NOTHING RETURNING delivery_id"
)
_FIRST = (
    "SELECT a.timestamp, a.signature, a.delivery_id FROM accepted_signatures AS a "
    "JOIN unnest(%s::bigint[], %s::bytea[]) AS m (timestamp, signature) "
    "ON a.timestamp = m.timestamp AND a.signature = m.signature"
)


async def _replays(conn: Conn, items: Sequence[Item]) -> dict[str, str]:
    """Remember a batch's signed deliveries; the replays among them, by id, to the first's id."""
    # In key order, so two receivers inserting the same pairs never wait on each other in a cycle.
    signed = sorted(
        (item.timestamp, item.signature, item.delivery_id)
        for item in items
        if isinstance(item, IncomingDelivery) and item.signature is not None
    )
    if not signed:
        return {}
    stamps = [s[0] for s in signed]
    digests = [s[1] for s in signed]
    cur = await conn.execute(_REMEMBER, (stamps, digests, [s[2] for s in signed]))
    stored = {row[0] for row in await cur.fetchall()}
    if len(stored) == len(signed):
        return {}
    cur = await conn.execute(_FIRST, (stamps, digests))
    first = {(t, bytes(s)): d for t, s, d in await cur.fetchall()}
    return {
        delivery_id: first[(stamp, digest)]
        for stamp, digest, delivery_id in signed
        if delivery_id not in stored and (stamp, digest) in first
    }


async def commit_ingress(conn: Conn, items: Sequence[Item]) -> list[str | None]:
    """Write one batch in the caller's transaction; per item ``None`` or the first one's id.

    A batch that stored a delivery also sends ``NOTIFY postflow_deliveries``
    (delivered at commit), which wakes the worker role's holder wherever it runs.
    """
    batch = sort_ingress(items, await _replays(conn, items))
    rows = [
        (d.delivery_id, d.received_at, d.event_type, d.file_id, d.body, d.signed)
        for d in batch.stored
    ]
    async with conn.cursor() as cur:
        if rows:
            await cur.executemany(
                "INSERT INTO deliveries (delivery_id, received_at, event_type, file_id, body, "
                "signed) VALUES (%s, %s, %s, %s, %s, %s)",
                rows,
            )
        # Always in the same key order, so two receivers' batches never deadlock.
        await cur.executemany(BUMP, [(k, key, n) for (k, key), n in sorted(batch.counts.items())])
        if rows:
            await cur.execute(f"NOTIFY {DELIVERIES_CHANNEL}")
    return batch.results


async def forget_signatures(conn: Conn, before: int) -> None:
    """Delete the accepted pairs whose timestamp is older than ``before`` (outside the window)."""
    await conn.execute("DELETE FROM accepted_signatures WHERE timestamp < %s", (before,))
