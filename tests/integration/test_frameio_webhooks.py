"""Webhook registration against the fake: create, update by name, secret, follow URLs, delete."""

from __future__ import annotations

import hashlib
import hmac
import stat
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from postflow_webhooks.adapters.frameio import (
    HANDLED_EVENTS,
    FrameioClient,
    FrameioWebhooks,
    ImsAuth,
    Pacer,
    SecretFile,
    retry_policy,
)
from postflow_webhooks.adapters.memory import FixedClock
from postflow_webhooks.app.policies import Policies, exponential
from postflow_webhooks.service.registration import WebhookRegistrar
from tests.fakes.fake_frameio import DeliveryRecorder, FakeFrameio

pytestmark = pytest.mark.anyio

AT = datetime(2026, 1, 1, tzinfo=UTC)
DOUBLING = exponential(6.0, 300.0)  # the registration policy without its jitter


class FakeTime:
    """Monotonic time that only moves when something sleeps; sleeps are recorded."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        """The fake monotonic clock."""
        return self.now

    async def sleep(self, seconds: float) -> None:
        """Record the sleep and move time forward instead of waiting."""
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def fake() -> Iterator[FakeFrameio]:
    """A running fake Frame.io that lists two webhooks per page."""
    with FakeFrameio(page_size=2) as server:
        yield server


@pytest.fixture
def ftime() -> FakeTime:
    """Injected time for the pacer and the registrar."""
    return FakeTime()


@pytest.fixture
async def webhooks(
    fake: FakeFrameio, tmp_path: Path, ftime: FakeTime
) -> AsyncIterator[FrameioWebhooks]:
    """Our webhook manager wired to the fake, paced on fake time."""
    config = fake.config(tmp_path)
    auth = ImsAuth(config)
    client = FrameioClient(config, auth, retrying=retry_policy(attempts=1))
    yield FrameioWebhooks(
        client,
        account_id=fake.account_id,
        workspace_id=fake.workspace_id,
        secret_file=SecretFile(config.webhook_secret_path),
        pacer=Pacer(monotonic=ftime.monotonic, sleep=ftime.sleep),
    )
    await client.aclose()
    await auth.aclose()


def add_foreign_webhooks(fake: FakeFrameio, count: int) -> None:
    """Webhooks of other integrations, so ours is on a later page."""
    for n in range(count):
        fake.webhooks[f"other-{n}"] = {
            "id": f"other-{n}",
            "name": f"someone-else-{n}",
            "url": f"https://example.com/{n}",
            "events": ["file.ready"],
            "active": True,
            "secret": "not-ours",
        }


async def test_register_creates_then_updates_by_name(
    fake: FakeFrameio, webhooks: FrameioWebhooks
) -> None:
    """First register creates with our events; the next one PATCHes the same webhook."""
    add_foreign_webhooks(fake, 3)
    first = await webhooks.register("https://one.trycloudflare.com")
    assert first.created and first.secret
    assert first.webhook.url == "https://one.trycloudflare.com/frameio-webhook"
    hook = fake.webhooks[first.webhook.id]
    assert hook["events"] == list(HANDLED_EVENTS) and hook["name"] == "postflow-webhooks"
    add_foreign_webhooks(fake, 5)
    second = await webhooks.register("https://two.trycloudflare.com/")
    assert not second.created
    assert second.secret == first.secret
    assert second.webhook.id == first.webhook.id
    assert fake.webhooks[first.webhook.id]["url"] == "https://two.trycloudflare.com/frameio-webhook"
    assert len(fake.calls("POST", "/webhooks")) == 1
    assert len(fake.calls("PATCH", "/webhooks/")) == 1
    assert len(fake.webhooks) == 6


async def test_secret_is_stored_owner_only(fake: FakeFrameio, webhooks: FrameioWebhooks) -> None:
    """The secret from the create answer lands in a 0600 file, equal to Frame.io's."""
    registration = await webhooks.register("https://x.example.com")
    path = webhooks.secret_file.path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert webhooks.secret_file.load() == fake.webhooks[registration.webhook.id]["secret"]
    assert registration.secret not in repr(registration)


async def test_lost_secret_means_delete_and_recreate(
    fake: FakeFrameio, webhooks: FrameioWebhooks
) -> None:
    """Ours exists but the secret file is gone: recreate it to get a secret again."""
    old = await webhooks.register("https://x.example.com")
    webhooks.secret_file.clear()
    new = await webhooks.register("https://x.example.com")
    assert new.created and new.secret and new.secret != old.secret
    assert list(fake.webhooks) == [new.webhook.id]
    assert webhooks.secret_file.load() == new.secret


async def test_update_url_patches_and_unregister_deletes(
    fake: FakeFrameio, webhooks: FrameioWebhooks
) -> None:
    """update_url changes only the URL; unregister deletes it and the stored secret."""
    assert await webhooks.update_url("https://nowhere.example.com") is None
    registration = await webhooks.register("https://a.example.com")
    info = await webhooks.update_url("https://b.example.com")
    assert info is not None and info.url == "https://b.example.com/frameio-webhook"
    assert fake.webhooks[registration.webhook.id]["url"] == info.url
    assert await webhooks.unregister()
    assert fake.webhooks == {}
    assert webhooks.secret_file.load() is None
    assert not await webhooks.unregister()


async def test_signed_delivery_verifies_with_the_stored_secret(
    fake: FakeFrameio, webhooks: FrameioWebhooks
) -> None:
    """A delivery from the fake carries a v0 signature the stored secret verifies."""
    with DeliveryRecorder() as recorder:
        await webhooks.register(recorder.url)
        answer = await fake.deliver("file.ready", "file-123")
        assert answer is not None and answer.status_code == 202
    headers, body = recorder.received[0]
    secret = webhooks.secret_file.load()
    assert secret is not None
    timestamp = headers["x-frameio-request-timestamp"]
    expected = hmac.new(
        secret.encode(), b"v0:" + timestamp.encode() + b":" + body, hashlib.sha256
    ).hexdigest()
    assert hmac.compare_digest(headers["x-frameio-signature"], f"v0={expected}")
    assert headers["user-agent"] == "Frame.io V4 API"
    assert b'"type": "file.ready"' in body


async def test_registrar_creates_once_and_hands_over_the_secret(
    fake: FakeFrameio, webhooks: FrameioWebhooks, ftime: FakeTime
) -> None:
    """The tunnel's first URL creates our webhook and the new secret reaches the receiver."""
    secrets: list[str] = []

    async def on_secret(secret: str) -> None:
        secrets.append(secret)

    registrar = WebhookRegistrar(
        webhooks, FixedClock(AT), backoff=DOUBLING, on_secret=on_secret, sleep=ftime.sleep
    )
    await registrar.on_new_public_url("https://first.trycloudflare.com")
    await registrar.wait_idle()
    status = registrar.status()
    assert status.registered_url == "https://first.trycloudflare.com/frameio-webhook"
    assert not status.pending and status.last_error is None and status.updates == 1
    assert status.last_synced_at == AT and ftime.sleeps == []
    assert secrets == [fake.webhooks[status.webhook_id or ""]["secret"]]
    await registrar.aclose()


async def test_rapid_url_changes_coalesce_to_the_latest_and_are_spaced(
    fake: FakeFrameio, webhooks: FrameioWebhooks, ftime: FakeTime
) -> None:
    """Three URLs in a row give one PATCH with the last, at least 6 s after the previous call."""
    registrar = WebhookRegistrar(webhooks, FixedClock(AT), backoff=DOUBLING, sleep=ftime.sleep)
    await registrar.on_new_public_url("https://u1.trycloudflare.com")
    await registrar.wait_idle()
    for n in (2, 3, 4):
        await registrar.on_new_public_url(f"https://u{n}.trycloudflare.com")
    await registrar.wait_idle()
    hook = next(iter(fake.webhooks.values()))
    assert hook["url"] == "https://u4.trycloudflare.com/frameio-webhook"
    assert len(fake.calls("PATCH", "/webhooks/")) == 1
    assert ftime.sleeps == [6.0]
    assert registrar.status().updates == 2
    await registrar.aclose()


async def test_failed_url_update_is_retried_with_backoff(
    fake: FakeFrameio, webhooks: FrameioWebhooks, ftime: FakeTime
) -> None:
    """Frame.io down during a URL change: the registrar waits, retries, and gets there."""
    backoffs: list[float] = []

    async def sleep_then_recover(seconds: float) -> None:
        backoffs.append(seconds)
        await ftime.sleep(seconds)
        if len(backoffs) == 2:
            fake.recover()

    registrar = WebhookRegistrar(
        webhooks, FixedClock(AT), backoff=DOUBLING, sleep=sleep_then_recover
    )
    await registrar.on_new_public_url("https://a.trycloudflare.com")
    await registrar.wait_idle()
    assert backoffs == []
    fake.fail_next(6, status=503)
    await registrar.on_new_public_url("https://b.trycloudflare.com")
    await registrar.wait_idle()
    assert (
        next(iter(fake.webhooks.values()))["url"] == "https://b.trycloudflare.com/frameio-webhook"
    )
    assert backoffs == [6.0, 12.0]
    assert registrar.status().last_error is None
    await registrar.aclose()


async def test_registrar_without_create_says_to_register(
    fake: FakeFrameio, webhooks: FrameioWebhooks, ftime: FakeTime
) -> None:
    """With creation off and no webhook of ours, the status says to run register."""
    registrar = WebhookRegistrar(
        webhooks, FixedClock(AT), backoff=DOUBLING, create_if_missing=False, sleep=ftime.sleep
    )
    await registrar.on_new_public_url("https://a.trycloudflare.com")
    await registrar.wait_idle()
    status = registrar.status()
    assert status.pending and status.last_error and "register" in status.last_error
    assert fake.webhooks == {}
    await registrar.aclose()


async def test_the_default_registration_backoff_is_jittered_from_six_seconds(
    fake: FakeFrameio, webhooks: FrameioWebhooks, ftime: FakeTime
) -> None:
    """With the default policy the retry waits are 6-7 s, then 12-13 s, then 24-25 s."""
    backoffs: list[float] = []

    async def sleep_then_recover(seconds: float) -> None:
        backoffs.append(seconds)
        if len(backoffs) == 3:
            fake.recover()

    registrar = WebhookRegistrar(
        webhooks, FixedClock(AT), backoff=Policies().registration, sleep=sleep_then_recover
    )
    fake.fail_next(100, status=502)
    await registrar.on_new_public_url("https://c.trycloudflare.com")
    await registrar.wait_idle()
    assert len(backoffs) == 3
    assert 6 <= backoffs[0] <= 7 and 12 <= backoffs[1] <= 13 and 24 <= backoffs[2] <= 25
    assert registrar.status().registered_url == "https://c.trycloudflare.com/frameio-webhook"
    await registrar.aclose()


async def test_point_at_creates_only_when_asked_and_hands_the_secret_once(
    fake: FakeFrameio, webhooks: FrameioWebhooks
) -> None:
    """The registry port: no webhook and no create gives None; a create returns its secret once."""
    assert await webhooks.point_at("https://a.example.com", create=False) is None
    assert fake.webhooks == {}
    created = await webhooks.point_at("https://a.example.com", create=True)
    assert created is not None and created.url == "https://a.example.com/frameio-webhook"
    assert created.secret is not None
    assert created.secret == fake.webhooks[created.webhook_id]["secret"]
    assert created.secret not in repr(created)
    updated = await webhooks.point_at("https://b.example.com/frameio-webhook", create=True)
    assert updated is not None and updated.webhook_id == created.webhook_id
    assert updated.secret is None
    moved = await webhooks.point_at("https://c.example.com", create=False)
    assert moved is not None and moved.webhook_id == created.webhook_id and moved.secret is None
    assert fake.webhooks[created.webhook_id]["url"] == "https://c.example.com/frameio-webhook"
    assert len(fake.webhooks) == 1
