"""Reconciliation: tracked files that may still change, read afresh from Frame.io.

Frame.io gives up on a delivery after five attempts, so a receiver that was
down can miss a change for good. Every ``interval`` seconds the files that are
not settled are looked up, and what the API says is applied through the
worker's own path (``apply``), so a repaired status is recorded and announced
exactly as a delivery's would be. Every ``decided_every``-th pass also looks
up the files already approved or rejected (not the deleted ones), so their
names and links stay current after a rename whose delivery was lost.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence

import attrs

from postflow_webhooks.domain.errors import DetailsUnavailableError
from postflow_webhooks.domain.events import WebhookEvent
from postflow_webhooks.domain.ports import FileDetails, RecordStore, Sleep
from postflow_webhooks.domain.records import Enrichment

log = logging.getLogger("postflow_webhooks.reconcile")

RECONCILE_LIMIT = 500
DECIDED_EVERY = 6

Change = tuple[WebhookEvent, Enrichment]
Apply = Callable[[Sequence[Change]], Awaitable[int]]


@attrs.frozen
class ReconcileResult:
    """One pass: changes to apply, files Frame.io no longer has, files it could not read."""

    items: tuple[Change, ...] = ()
    gone: tuple[str, ...] = ()
    unavailable: tuple[str, ...] = ()


class Reconciler:
    """Looks unsettled files up and applies what Frame.io says of them."""

    def __init__(
        self,
        details: FileDetails,
        records: RecordStore,
        apply: Apply,
        *,
        account_id: str | None = None,
        concurrency: int = 4,
        sleep: Sleep = asyncio.sleep,
        decided_every: int = DECIDED_EVERY,
    ) -> None:
        self._details = details
        self._records = records
        self._apply = apply
        self._account_id = account_id
        self._limit = asyncio.Semaphore(max(1, concurrency))
        self._sleep = sleep
        self._decided_every = max(1, decided_every)
        self.passes = 0

    @property
    def account_id(self) -> str | None:
        """The Frame.io account whose files are looked up; ``None``: passes do nothing yet."""
        return self._account_id

    def use_account(self, account_id: str) -> None:
        """Look files up in ``account_id`` from the next pass on, unless one was configured."""
        if self._account_id is None and account_id:
            self._account_id = account_id
            log.info("reconciliation will look files up in Frame.io account %s", account_id)

    async def unsettled(self) -> list[str]:
        """Tracked files that may still change, most recent first."""
        records = await self._records.list_records(limit=RECONCILE_LIMIT)
        return [r.file_id for r in records if not r.settled]

    async def tracked(self, *, decided: bool) -> list[str]:
        """Files to look up: the unsettled ones, with the approved and rejected ones if ``decided``."""
        records = await self._records.list_records(limit=RECONCILE_LIMIT)
        return [r.file_id for r in records if not r.deleted and (decided or not r.settled)]

    async def reconcile(self, file_ids: Iterable[str]) -> ReconcileResult:
        """Look every file up; the changes come back in the order the ids were given."""
        ids = list(dict.fromkeys(file_ids))
        answers = await asyncio.gather(*(self._one(file_id) for file_id in ids))
        items: list[Change] = []
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

    async def run_once(self) -> ReconcileResult:
        """Reconcile the unsettled files (every few passes the decided ones too); apply the changes."""
        if self._account_id is None:
            log.debug("reconciliation waits for a Frame.io account id")
            return ReconcileResult()
        self.passes += 1
        decided = self.passes % self._decided_every == 0
        result = await self.reconcile(await self.tracked(decided=decided))
        if result.items:
            await self._apply(result.items)
        log.info(
            "reconciled %d file(s); %d gone, %d unavailable",
            len(result.items),
            len(result.gone),
            len(result.unavailable),
        )
        return result

    async def run_periodically(self, interval: float, passes: int | None = None) -> None:
        """Reconcile now, then every ``interval`` seconds until cancelled (or ``passes`` done)."""
        done = 0
        while passes is None or done < passes:
            if done:
                await self._sleep(interval)
            done += 1
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("reconciliation pass failed; next pass in %.0f s", interval)

    async def _one(self, file_id: str) -> Change | DetailsUnavailableError | None:
        async with self._limit:
            try:
                info = await self._details.file(file_id, self._account_id, fresh=True)
            except DetailsUnavailableError as exc:
                log.warning("reconciliation could not read %s: %s", file_id, exc)
                return exc
        if info is None:
            return None
        return WebhookEvent.reconciliation(file_id, self._account_id), Enrichment(file=info)
