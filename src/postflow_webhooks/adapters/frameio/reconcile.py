"""Reconciliation: re-read unfinished files from Frame.io so missed deliveries are repaired."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence

import attrs

from postflow_webhooks.adapters.frameio.client import Sleep
from postflow_webhooks.domain.errors import DetailsUnavailableError
from postflow_webhooks.domain.events import WebhookEvent
from postflow_webhooks.domain.ports import FileDetails
from postflow_webhooks.domain.records import Enrichment

log = logging.getLogger("postflow_webhooks.frameio")

DEFAULT_INTERVAL = 600.0

FileIdSource = Callable[[], Awaitable[Sequence[str]]]
Apply = Callable[[WebhookEvent, Enrichment], Awaitable[None]]


@attrs.frozen
class ReconcileResult:
    """One pass: events to apply, files Frame.io no longer has, and files it could not read."""

    items: tuple[tuple[WebhookEvent, Enrichment], ...] = ()
    gone: tuple[str, ...] = ()
    unavailable: tuple[str, ...] = ()


class Reconciler:
    """Fetches each file and turns it into the domain's internal reconciliation event."""

    def __init__(
        self, details: FileDetails, *, account_id: str | None = None, concurrency: int = 4
    ) -> None:
        self._details = details
        self._account_id = account_id
        self._limit = asyncio.Semaphore(max(1, concurrency))

    async def reconcile(self, file_ids: Iterable[str]) -> ReconcileResult:
        """Look every file up; pairs come back in the order the ids were given."""
        ids = list(dict.fromkeys(file_ids))
        answers = await asyncio.gather(*(self._one(file_id) for file_id in ids))
        items: list[tuple[WebhookEvent, Enrichment]] = []
        gone: list[str] = []
        unavailable: list[str] = []
        for file_id, answer in zip(ids, answers, strict=True):
            if answer is None:
                gone.append(file_id)
            elif isinstance(answer, DetailsUnavailableError):
                unavailable.append(file_id)
            else:
                items.append(answer)
        return ReconcileResult(tuple(items), tuple(gone), tuple(unavailable))

    async def run_periodically(
        self,
        file_ids: FileIdSource,
        apply: Apply,
        *,
        interval: float = DEFAULT_INTERVAL,
        sleep: Sleep = asyncio.sleep,
        passes: int | None = None,
    ) -> None:
        """Reconcile now, then every ``interval`` seconds until cancelled (or ``passes`` done)."""
        done = 0
        while passes is None or done < passes:
            if done:
                await sleep(interval)
            done += 1
            try:
                result = await self.reconcile(await file_ids())
                for event, enrichment in result.items:
                    await apply(event, enrichment)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("reconciliation pass failed; next pass in %.0fs", interval)
                continue
            log.info(
                "reconciled %d file(s); %d gone, %d unavailable",
                len(result.items),
                len(result.gone),
                len(result.unavailable),
            )

    async def _one(
        self, file_id: str
    ) -> tuple[WebhookEvent, Enrichment] | DetailsUnavailableError | None:
        async with self._limit:
            try:
                info = await self._details.file(file_id, self._account_id, fresh=True)
            except DetailsUnavailableError as exc:
                log.warning("reconciliation could not read %s: %s", file_id, exc)
                return exc
        if info is None:
            return None
        event = WebhookEvent.reconciliation(file_id, self._account_id)
        return event, Enrichment(file=info)
