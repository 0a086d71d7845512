"""``DiscordNotifier`` against a real local server that answers like Discord."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import httpx
import pytest

from postflow_webhooks.adapters.discord import DiscordConfig, DiscordNotifier
from postflow_webhooks.domain.errors import (
    DestinationBrokenError,
    NotifierError,
    RateLimitedError,
    RejectedError,
    TransientError,
)
from postflow_webhooks.domain.records import Notification, NotificationKind
from postflow_webhooks.domain.statuses import PostflowStatus
from tests.fakes.fake_discord import FakeDiscord

pytestmark = pytest.mark.anyio


def note(name: str = "shot_010.mov", ident: int = 1) -> Notification:
    """A status notification: PROCESSING → COMPLETED."""
    return Notification(
        kind=NotificationKind.STATUS,
        file_id="f-1",
        at=datetime(2024, 5, 1, tzinfo=UTC),
        event_type="file.ready",
        delivery_id="d-1",
        version=1,
        name=name,
        old_status=PostflowStatus.PROCESSING,
        new_status=PostflowStatus.COMPLETED,
        id=ident,
    )


@pytest.fixture
def fake() -> Iterator[FakeDiscord]:
    """A fake Discord with a roomy bucket."""
    with FakeDiscord(bucket_limit=50, bucket_window=2.0) as server:
        yield server


@pytest.fixture
async def notifier(fake: FakeDiscord) -> AsyncIterator[DiscordNotifier]:
    """A notifier posting to the fake, with short timeouts."""
    config = DiscordConfig(webhook_url=fake.webhook_url, timeout=1.0, connect_timeout=1.0)
    sender = DiscordNotifier(config)
    yield sender
    await sender.aclose()


async def test_a_notification_is_posted_with_wait_true_and_no_mentions(
    fake: FakeDiscord, notifier: DiscordNotifier
) -> None:
    """A 200 answer is success; the request carries ``wait=true`` and ``allowed_mentions``."""
    await notifier.send(note("@everyone.mov"))
    (message,) = fake.messages
    assert fake.queries == [{"wait": "true"}]
    assert message["embeds"][0]["title"] == "@everyone.mov"
    assert message["allowed_mentions"] == {"parse": []}
    assert fake.pings == []


async def test_an_existing_thread_id_is_kept(fake: FakeDiscord) -> None:
    """A URL with ``?thread_id=`` keeps it next to ``wait=true``."""
    config = DiscordConfig(webhook_url=fake.webhook_url + "?thread_id=42")
    sender = DiscordNotifier(config)
    await sender.send(note())
    await sender.aclose()
    assert fake.queries == [{"thread_id": "42", "wait": "true"}]


async def test_rate_limit_headers_drive_the_next_delay(fake: FakeDiscord) -> None:
    """Once the bucket's remaining count hits zero the notifier asks to wait for the reset."""
    fake.bucket_limit = 3
    sender = DiscordNotifier(DiscordConfig(webhook_url=fake.webhook_url))
    for ident in range(3):
        assert sender.ready_in() == 0.0
        await sender.send(note(ident=ident))
    assert 0.0 < sender.ready_in() <= 2.1
    snapshot = sender.rate_limit_snapshot()
    assert (snapshot.limit, snapshot.remaining, snapshot.bucket) == (3, 0, fake.bucket_id)
    with pytest.raises(RateLimitedError) as caught:
        await sender.send(note(ident=9))
    assert 0.0 < caught.value.retry_after <= 2.0
    await sender.aclose()


async def test_a_json_429_gives_its_retry_after(
    fake: FakeDiscord, notifier: DiscordNotifier
) -> None:
    """A 429 with a JSON body raises ``RateLimitedError`` with the body's ``retry_after``."""
    fake.fail_next(429, retry_after=0.75)
    with pytest.raises(RateLimitedError) as caught:
        await notifier.send(note())
    assert caught.value.retry_after == 0.75
    assert "global" in caught.value.reason


async def test_a_cloudflare_html_429_uses_retry_after_header(
    fake: FakeDiscord, notifier: DiscordNotifier
) -> None:
    """An HTML 429 (Cloudflare) is handled: the wait comes from ``Retry-After``."""
    fake.fail_next(429, html=True, retry_after=7)
    with pytest.raises(RateLimitedError) as caught:
        await notifier.send(note())
    assert caught.value.retry_after == 7.0
    assert notifier.ready_in() > 6.0


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_server_errors_are_transient(
    fake: FakeDiscord, notifier: DiscordNotifier, status: int
) -> None:
    """5xx answers raise ``TransientError``."""
    fake.fail_next(status)
    with pytest.raises(TransientError, match=str(status)):
        await notifier.send(note())


async def test_a_deleted_webhook_is_a_broken_destination(
    fake: FakeDiscord, notifier: DiscordNotifier
) -> None:
    """404 Unknown Webhook raises ``DestinationBrokenError`` with Discord's message."""
    fake.delete_webhook()
    with pytest.raises(DestinationBrokenError, match="Unknown Webhook"):
        await notifier.send(note())


async def test_a_revoked_token_is_a_broken_destination(
    fake: FakeDiscord, notifier: DiscordNotifier
) -> None:
    """401 Invalid Webhook Token raises ``DestinationBrokenError``."""
    fake.revoke_token()
    with pytest.raises(DestinationBrokenError, match="Invalid Webhook Token"):
        await notifier.send(note())


async def test_an_invalid_body_is_rejected_with_discords_message(fake: FakeDiscord) -> None:
    """400 raises ``RejectedError`` carrying Discord's message, code and field errors."""
    sender = DiscordNotifier(DiscordConfig(webhook_url=fake.webhook_url, username="Discord bot"))
    with pytest.raises(RejectedError) as caught:
        await sender.send(note())
    await sender.aclose()
    assert "Invalid Form Body (code 50035)" in caught.value.reason
    assert "username" in caught.value.reason
    assert fake.messages == []


async def test_a_slow_answer_times_out_as_transient(fake: FakeDiscord) -> None:
    """An answer slower than the timeout raises ``TransientError``."""
    config = DiscordConfig(webhook_url=fake.webhook_url, timeout=0.2, connect_timeout=0.2)
    sender = DiscordNotifier(config)
    fake.slow_next(1.0)
    with pytest.raises(TransientError, match="timed out"):
        await sender.send(note())
    await sender.aclose()


async def test_a_dropped_connection_is_transient(
    fake: FakeDiscord, notifier: DiscordNotifier
) -> None:
    """A connection closed mid-answer raises ``TransientError``."""
    fake.drop_next()
    with pytest.raises(TransientError, match="network error"):
        await notifier.send(note())


async def test_a_refused_connection_is_transient() -> None:
    """Nothing listening on the port raises ``TransientError``."""
    with FakeDiscord() as gone:
        url = gone.webhook_url
    sender = DiscordNotifier(DiscordConfig(webhook_url=url, timeout=1.0, connect_timeout=1.0))
    with pytest.raises(TransientError):
        await sender.send(note())
    await sender.aclose()


async def test_the_url_never_appears_in_errors_reprs_or_logs(
    fake: FakeDiscord, caplog: pytest.LogCaptureFixture
) -> None:
    """Across every failure mode the token is absent from messages, reprs and DEBUG logs."""
    caplog.set_level(logging.DEBUG)
    config = DiscordConfig(webhook_url=fake.webhook_url, timeout=0.2, connect_timeout=0.2)
    sender = DiscordNotifier(config)
    seen: list[str] = [repr(sender), repr(config), sender.label, sender.key]
    await sender.send(note())
    fake.fail_next(429, html=True)
    fake.fail_next(502)
    fake.fail_next(400, message="Invalid Form Body", code=50035)
    fake.slow_next(1.0)
    fake.drop_next()
    for _ in range(5):
        with pytest.raises(NotifierError) as caught:
            await sender.send(note())
        seen += [str(caught.value), repr(caught.value), caught.value.reason]
        assert caught.value.__cause__ is None
    fake.revoke_token()
    with pytest.raises(DestinationBrokenError) as broken:
        await sender.send(note())
    seen.append(str(broken.value))
    await sender.aclose()
    assert any("HTTP Request" in r.getMessage() for r in caplog.records)
    text = "\n".join([*seen, caplog.text, *(r.getMessage() for r in caplog.records)])
    assert fake.token not in text
    assert fake.webhook_url not in text
    assert "discord webhook …/8899" in text


async def test_a_given_client_is_used_and_left_open(fake: FakeDiscord) -> None:
    """An injected ``httpx.AsyncClient`` is used and not closed by the notifier."""
    async with httpx.AsyncClient() as client:
        sender = DiscordNotifier(DiscordConfig(webhook_url=fake.webhook_url), client=client)
        await sender.send(note())
        await sender.aclose()
        assert not client.is_closed
    assert len(fake.messages) == 1
