"""Periodic reconciliation: tracked files that may still change, read afresh from Frame.io.

Whatever the API says is applied through the worker's own path
(``DeliveryWorker.apply_external``), so a repaired status is recorded and
announced exactly as a delivery's would be.
"""

from __future__ import annotations

from postflow_webhooks.adapters.frameio import FrameioAdapter
from postflow_webhooks.app.worker import DeliveryWorker
from postflow_webhooks.domain.events import WebhookEvent
from postflow_webhooks.domain.ports import UploadStore
from postflow_webhooks.domain.records import Enrichment

RECONCILE_LIMIT = 500


async def unsettled_file_ids(store: UploadStore) -> list[str]:
    """Tracked files that may still change, most recent first."""
    records = await store.list_records(limit=RECONCILE_LIMIT)
    return [r.file_id for r in records if not r.settled]


async def reconcile_forever(
    frameio: FrameioAdapter, store: UploadStore, worker: DeliveryWorker, interval: float
) -> None:
    """Reconcile now and every ``interval`` seconds until cancelled."""

    async def file_ids() -> list[str]:
        return await unsettled_file_ids(store)

    async def apply(event: WebhookEvent, enrichment: Enrichment) -> None:
        await worker.apply_external([(event, enrichment)])

    await frameio.reconciler.run_periodically(file_ids, apply, interval=interval)
