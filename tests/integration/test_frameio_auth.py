"""Adobe IMS auth against the fake: caching, expiry, refresh, 401 retry, secrets kept out."""

from __future__ import annotations

import json
import os
import socket
import stat
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from postflow_webhooks.adapters.frameio import (
    AuthFlow,
    FrameioAdapter,
    FrameioAuthError,
    FrameioClient,
    FrameioConfig,
    FrameioConfigError,
    ImsAuth,
    Registration,
    WebhookInfo,
    retry_policy,
)
from postflow_webhooks.app.composition import frameio_config
from tests.fakes.fake_frameio import FakeFrameio
from tests.support import receiver_settings

pytestmark = pytest.mark.anyio


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.at = datetime(2026, 1, 1, tzinfo=UTC)

    def now(self) -> datetime:
        """The fake now."""
        return self.at

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self.at += timedelta(seconds=seconds)


async def no_sleep(_: float) -> None:
    """A sleep that returns at once."""


@pytest.fixture
def fake() -> Iterator[FakeFrameio]:
    """A running fake Frame.io."""
    with FakeFrameio(token_ttl=600) as server:
        yield server


@pytest.fixture
def clock() -> FakeClock:
    """The injected clock."""
    return FakeClock()


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def mode(path: Path) -> int:
    """Permission bits of a file."""
    return stat.S_IMODE(path.stat().st_mode)


async def test_client_credentials_token_is_cached_on_disk_owner_only(
    fake: FakeFrameio, tmp_path: Path, clock: FakeClock
) -> None:
    """The first call fetches a token, stores it 0600, and later calls reuse it."""
    config = fake.config(tmp_path)
    auth = ImsAuth(config, clock=clock)
    first = await auth.access_token()
    assert await auth.access_token() == first
    assert fake.grants == ["client_credentials"]
    assert mode(config.token_cache_path) == 0o600
    assert not list(tmp_path.glob(".*.tmp"))
    restarted = ImsAuth(config, clock=clock)
    assert await restarted.access_token() == first
    assert fake.grants == ["client_credentials"]
    await auth.aclose()
    await restarted.aclose()


async def test_token_is_renewed_before_it_expires(
    fake: FakeFrameio, tmp_path: Path, clock: FakeClock
) -> None:
    """A token inside the refresh margin is replaced before use, not after a 401."""
    auth = ImsAuth(fake.config(tmp_path, refresh_margin=120), clock=clock)
    first = await auth.access_token()
    clock.advance(400)
    assert await auth.access_token() == first
    clock.advance(100)
    second = await auth.access_token()
    assert second != first
    assert fake.grants == ["client_credentials", "client_credentials"]
    await auth.aclose()


async def test_a_401_renews_the_token_and_retries_once(
    fake: FakeFrameio, tmp_path: Path, clock: FakeClock
) -> None:
    """A token the API rejects is renewed once and the call succeeds."""
    file_id = fake.add_file("a.mov")
    config = fake.config(tmp_path)
    auth = ImsAuth(config, clock=clock)
    client = FrameioClient(config, auth, retrying=retry_policy(sleep=no_sleep))
    path = f"/v4/accounts/{fake.account_id}/files/{file_id}"
    assert await client.get_json(path) is not None
    fake.expire_tokens()
    body = await client.get_json(path)
    assert body is not None and body["data"]["name"] == "a.mov"
    assert [r.status for r in fake.calls("GET", file_id)] == [200, 401, 200]
    assert len(fake.grants) == 2
    await client.aclose()
    await auth.aclose()


async def test_a_second_401_raises_auth_error_without_the_token(
    fake: FakeFrameio, tmp_path: Path, clock: FakeClock
) -> None:
    """When even a fresh token is refused, one retry only, then FrameioAuthError."""
    fake.token_ttl = 0
    file_id = fake.add_file()
    config = fake.config(tmp_path)
    auth = ImsAuth(config, clock=clock)
    client = FrameioClient(config, auth, retrying=retry_policy(sleep=no_sleep))
    with pytest.raises(FrameioAuthError) as caught:
        await client.get_json(f"/v4/accounts/{fake.account_id}/files/{file_id}")
    assert caught.value.status == 401
    assert len(fake.calls("GET", file_id)) == 2
    cached = json.loads(config.token_cache_path.read_text())
    assert cached["access_token"] not in str(caught.value)
    assert fake.client_secret not in str(caught.value)
    await client.aclose()
    await auth.aclose()


async def test_bad_client_secret_is_an_auth_error_that_does_not_leak_it(
    fake: FakeFrameio, tmp_path: Path
) -> None:
    """IMS refusing the credentials gives FrameioAuthError with the IMS code, no secret."""
    config = fake.config(tmp_path, client_secret="wrong-secret-value")
    auth = ImsAuth(config)
    with pytest.raises(FrameioAuthError) as caught:
        await auth.access_token()
    assert caught.value.code == "invalid_client"
    assert "wrong-secret-value" not in str(caught.value)
    assert "wrong-secret-value" not in repr(caught.value)
    assert not config.token_cache_path.exists()
    await auth.aclose()


async def test_user_flow_stores_refresh_token_then_refreshes(
    fake: FakeFrameio, tmp_path: Path, clock: FakeClock
) -> None:
    """Sign-in through the local callback stores a refresh token, later used to renew."""
    redirect = f"http://127.0.0.1:{free_port()}/callback"
    config = fake.config(tmp_path, redirect_uri=redirect, flow=AuthFlow.USER)
    auth = ImsAuth(config, clock=clock)

    async def browser(url: str) -> None:
        async with httpx.AsyncClient(follow_redirects=True) as http:
            answer = await http.get(url)
        assert answer.status_code == 200

    summary = await auth.authorize_user(browser, timeout=5)
    assert summary.flow is AuthFlow.USER and summary.has_refresh_token
    assert fake.grants == ["authorization_code"]
    assert mode(config.token_cache_path) == 0o600
    assert "access_token" not in repr(summary)
    clock.advance(10_000)
    await auth.access_token()
    assert fake.grants == ["authorization_code", "refresh_token"]
    fake.revoke_refresh_tokens()
    clock.advance(10_000)
    with pytest.raises(FrameioAuthError, match="run `postflow-webhooks auth`"):
        await ImsAuth(config, clock=clock).access_token()
    await auth.aclose()


async def test_auto_flow_falls_back_to_client_credentials_when_refresh_is_refused(
    fake: FakeFrameio, tmp_path: Path, clock: FakeClock
) -> None:
    """With the default flow a dead refresh token does not stop the service."""
    redirect = f"http://127.0.0.1:{free_port()}/callback"
    config = fake.config(tmp_path, redirect_uri=redirect)

    async def browser(url: str) -> None:
        async with httpx.AsyncClient(follow_redirects=True) as http:
            await http.get(url)

    auth = ImsAuth(config, clock=clock)
    await auth.authorize_user(browser, timeout=5)
    fake.revoke_refresh_tokens()
    clock.advance(10_000)
    await auth.access_token()
    assert fake.grants == ["authorization_code", "refresh_token", "client_credentials"]
    await auth.aclose()


async def test_callback_rejects_a_wrong_state(fake: FakeFrameio, tmp_path: Path) -> None:
    """A callback without our state is refused and the flow times out cleanly."""
    redirect = f"http://127.0.0.1:{free_port()}/callback"
    auth = ImsAuth(fake.config(tmp_path, redirect_uri=redirect))

    async def forged(url: str) -> None:
        async with httpx.AsyncClient() as http:
            answer = await http.get(f"{redirect}?code=abc&state=forged")
        assert answer.status_code == 400

    with pytest.raises(FrameioAuthError, match="no sign-in"):
        await auth.authorize_user(forged, timeout=0.05)
    assert fake.grants == []
    await auth.aclose()


def test_secrets_stay_out_of_reprs(tmp_path: Path) -> None:
    """Config, tokens and registrations never show a secret in repr."""
    config = FrameioConfig(
        client_id="cid", client_secret="s3cr3t-client", account_id="a", workspace_id="w"
    )
    assert "s3cr3t-client" not in repr(config)
    info = WebhookInfo(id="1", name="n", url="u")
    assert "hook-s3cr3t" not in repr(Registration(webhook=info, secret="hook-s3cr3t", created=True))


def test_config_file_errors_name_the_key_and_file(tmp_path: Path) -> None:
    """A missing key in frameio_config.json fails naming the key and the file."""
    path = tmp_path / "frameio_config.json"
    path.write_text(json.dumps({"client_id": "x", "client_secret": "y", "account_id": "z"}))
    with pytest.raises(FrameioConfigError) as caught:
        FrameioConfig.from_file(path)
    assert caught.value.key == "workspace_id" and str(path) in str(caught.value)
    path.write_text(
        json.dumps({"client_id": "x", "client_secret": "y", "account_id": "z", "workspace_id": "w"})
    )
    config = FrameioConfig.from_file(path, data_dir=tmp_path)
    assert config.token_cache_path == tmp_path / "frameio_token.json"
    assert config.redirect_uri == "http://localhost:3000/callback"


def test_a_cache_file_readable_by_others_is_narrowed(fake: FakeFrameio, tmp_path: Path) -> None:
    """A token cache found with loose permissions is set back to 0600 when read."""
    config = fake.config(tmp_path)
    config.token_cache_path.write_text("{}")
    os.chmod(config.token_cache_path, 0o644)
    assert ImsAuth(config).summary() is None
    assert mode(config.token_cache_path) == 0o600


async def test_a_cached_token_of_another_client_or_flow_is_not_used(
    fake: FakeFrameio, tmp_path: Path, clock: FakeClock
) -> None:
    """The cache only serves tokens made for this client_id and an accepted flow."""
    config = fake.config(tmp_path)
    auth = ImsAuth(config, clock=clock)
    await auth.access_token()
    await auth.aclose()
    other_client = ImsAuth(fake.config(tmp_path, client_id="another-client"), clock=clock)
    assert other_client.summary() is None
    user_only = ImsAuth(fake.config(tmp_path, flow=AuthFlow.USER), clock=clock)
    with pytest.raises(FrameioAuthError, match="run `postflow-webhooks auth`"):
        await user_only.access_token()
    await other_client.aclose()
    await user_only.aclose()


async def test_the_adapter_from_settings_shares_one_token_and_leaves_a_given_client_open(
    fake: FakeFrameio, tmp_path: Path, clock: FakeClock
) -> None:
    """frameio_config(settings) feeds FrameioAdapter; details and webhooks use one token."""
    assert frameio_config(receiver_settings(tmp_path)) is None
    settings = receiver_settings(
        tmp_path,
        **fake.receiver_settings(),
    )
    config = frameio_config(settings)
    assert config is not None and config.api_base == fake.url
    assert config.webhook_secret_path == tmp_path / "frameio_webhook_secret"
    assert fake.client_secret not in repr(config)
    file_id = fake.add_file("shared.mov")
    async with httpx.AsyncClient() as http:
        adapter = FrameioAdapter(
            config, clock=clock, retrying=retry_policy(sleep=no_sleep), sleep=no_sleep, http=http
        )
        info = await adapter.details.file(file_id)
        assert info is not None and info.name == "shared.mov"
        assert await adapter.webhooks.find() is None
        await adapter.aclose()
        assert not http.is_closed
    assert fake.grants == ["client_credentials"]
    assert len(fake.calls("GET")) == 3
