"""Discord pacing: a sustained backlog against the fake's 5-per-2-s bucket, in real time."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

from tests.fakes.fake_discord import FakeDiscord

from postflow_webhooks.adapters.clock import SystemClock
from postflow_webhooks.adapters.discord import DiscordConfig, DiscordNotifier
from postflow_webhooks.adapters.memory import MemoryDatabase
from postflow_webhooks.app.policies import Policies
from postflow_webhooks.domain.journal import BatchResult
from postflow_webhooks.domain.records import Notification, NotificationKind
from postflow_webhooks.domain.statuses import PostflowStatus
from postflow_webhooks.service.dispatcher import NotificationDispatcher

BACKLOG = 40
BUCKET_LIMIT = 5
BUCKET_WINDOW = 2.0


def _backlog(count: int) -> tuple[Notification, ...]:
    statuses = list(PostflowStatus)
    return tuple(
        Notification(
            kind=NotificationKind.STATUS,
            file_id=f"f{i % 7}",
            at=datetime.now(UTC),
            event_type="file.status.changed",
            delivery_id=f"bench-{i}",
            version=1,
            name=f"shot_{i:03d}.mov",
            old_status=statuses[i % len(statuses)],
            new_status=statuses[(i + 1) % len(statuses)],
        )
        for i in range(count)
    )


async def _run(fake: FakeDiscord) -> float:
    database = MemoryDatabase()
    await database.commit(BatchResult(notifications=_backlog(BACKLOG)))
    notifier = DiscordNotifier(DiscordConfig(webhook_url=fake.webhook_url))
    dispatcher = NotificationDispatcher(
        database,
        database,
        notifier,
        SystemClock(),
        outage_backoff=Policies().notification_outage,
    )
    started = time.monotonic()
    try:
        await dispatcher.drain()
    finally:
        await notifier.aclose()
    elapsed = time.monotonic() - started
    assert await database.due(1) == [], "backlog not drained"
    return elapsed


def main() -> None:
    """Drain a backlog through the real notifier and print its rate and 429 ratio."""
    with FakeDiscord(bucket_limit=BUCKET_LIMIT, bucket_window=BUCKET_WINDOW) as fake:
        elapsed = asyncio.run(_run(fake))
        requests = sum(fake.answers.values())
        limited = fake.answers[429]
        times = fake.request_times
    sent = len(fake.messages)
    bucket_rate = BUCKET_LIMIT / BUCKET_WINDOW
    # After the first full bucket, each further bucket costs one window.
    steady = (sent - BUCKET_LIMIT) / (times[-1] - times[0]) if sent > BUCKET_LIMIT else 0.0
    print("discord pacing (fake Discord, bucket 5 per 2 s, real time)")
    print(f"  backlog                {BACKLOG} notifications, {sent} delivered in {elapsed:.2f} s")
    print(f"  sent/s overall         {sent / elapsed:.2f}  (bucket rate {bucket_rate:.2f}/s)")
    print(f"  sent/s after 1st burst {steady:.2f} ({steady / bucket_rate:.0%} of bucket rate)")
    print(
        f"  requests               {requests}, answered 429: {limited} ({limited / requests:.2%})"
    )


if __name__ == "__main__":
    main()
