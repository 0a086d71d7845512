"""SQL and batch handling that both database adapters share, each in its own parameter style."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

import attrs

from postflow_webhooks.domain.journal import IncomingDelivery
from postflow_webhooks.domain.statuses import PostflowStatus


def escape_like(text: str) -> str:
    """``text`` matched literally inside a LIKE pattern (backslash is the escape)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def file_filter(
    status: PostflowStatus | None, search: str | None, *, param: str, like: str
) -> tuple[str, list[object]]:
    """The ``WHERE`` clause (or ``""``) and its arguments for tracked files.

    By status, and by a search in the name or the file id. ``param`` is the
    engine's placeholder (``?``, ``%s``); ``like`` its case-folding LIKE with
    the placeholder and backslash escape (``LIKE ? ESCAPE '\\'``, ``ILIKE %s``).
    """
    clauses: list[str] = []
    args: list[object] = []
    if status is not None:
        clauses.append(f"status = {param}")
        args.append(status.name)
    if search:
        pattern = f"%{escape_like(search)}%"
        clauses.append(f"(name {like} OR file_id {like})")
        args += [pattern, pattern]
    return (f"WHERE {' AND '.join(clauses)}" if clauses else ""), args


@attrs.frozen
class IngressBatch:
    """One batch of the receiver's writes, sorted out before either engine stores it.

    ``results`` has, per item, ``None`` or the first delivery's id (a replay);
    ``stored`` are the deliveries to insert; ``counts`` the counter increments
    by (kind, key): totals, event types, duplicates, refusals by reason.
    """

    results: list[str | None]
    stored: list[IncomingDelivery]
    counts: Counter[tuple[str, str]]


def sort_ingress(
    items: Sequence[IncomingDelivery | str], replays: Mapping[str, str]
) -> IngressBatch:
    """Deliveries to store and what to count; a refusal is its reason, a replay its first id."""
    counts: Counter[tuple[str, str]] = Counter()
    stored: list[IncomingDelivery] = []
    results: list[str | None] = []
    for item in items:
        if not isinstance(item, IncomingDelivery):
            counts["rejection", item] += 1
            results.append(None)
            continue
        first = replays.get(item.delivery_id)
        results.append(first)
        if first is not None:
            counts["duplicate", ""] += 1
            continue
        stored.append(item)
        counts["total", ""] += 1
        counts["event_type", item.event_type] += 1
    return IngressBatch(results, stored, counts)
