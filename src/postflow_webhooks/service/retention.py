"""Retention: processed deliveries and settled notifications are forgotten after a while."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from postflow_webhooks.domain.errors import StorageError
from postflow_webhooks.domain.ports import Clock, Retention, Sleep

log = logging.getLogger("postflow_webhooks.retention")


async def prune_periodically(
    retention: Retention,
    clock: Clock,
    *,
    keep: timedelta,
    every: float = 3600.0,
    sleep: Sleep = asyncio.sleep,
) -> None:
    """Prune what is older than ``keep`` now and every ``every`` seconds, until cancelled."""
    while True:
        try:
            gone = await retention.prune(clock.now() - keep)
        except StorageError as exc:
            log.warning("pruning failed: %s", exc)
        else:
            if gone:
                log.info("pruned %d processed deliveries and settled notifications", gone)
        await sleep(every)
