"""``SharedStateSync``: what a receiver publishes and what it takes from a shared store.

The store is an in-memory stand-in for ``PostgresSharedState``; the same
sync runs against the real PostgreSQL in ``tests/integration/test_shared_state.py``
and ``test_shared_registrar.py``. With SQLite nothing of this is built.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest

from postflow_webhooks.app.composition import build_runtime
from postflow_webhooks.app.secrets import SigningSecrets
from postflow_webhooks.app.sharing import (
    REGISTRAR_KEY,
    SECRET_KEY,
    SharedStateSync,
    decode_status,
    encode_status,
)
from postflow_webhooks.domain.errors import StorageUnavailableError
from postflow_webhooks.service.registration import RegistrarStatus, WebhookRegistrar
from tests.support import receiver_settings

pytestmark = pytest.mark.anyio

SYNCED = RegistrarStatus(
    webhook_id="wh-1",
    registered_url="https://hooks.example.com/frameio-webhook",
    wanted_url="https://hooks.example.com/frameio-webhook",
    updates=3,
    last_synced_at=datetime(2026, 11, 29, 12, 0, tzinfo=UTC),
)


class MemoryValues:
    """A shared store in memory; ``failing`` makes every call fail as a lost database would."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}
        self.failing = False

    async def read_all(self) -> dict[str, str]:
        """Every value kept."""
        if self.failing:
            raise StorageUnavailableError("database gone")
        return dict(self.values)

    async def put(self, key: str, value: str) -> None:
        """Keep a value."""
        if self.failing:
            raise StorageUnavailableError("database gone")
        self.values[key] = value


class StubRegistry:
    """A ``WebhookRegistry`` that is never called in these tests."""

    name = "postflow-webhooks"

    async def point_at(self, url: str, *, create: bool) -> None:
        """Never reached."""
        raise AssertionError("not called")


def registrar_with(status: RegistrarStatus) -> WebhookRegistrar:
    """A registrar whose status is ``status`` (as after a sync)."""
    registrar = WebhookRegistrar(StubRegistry(), clock=None, backoff=lambda n: 1.0)  # type: ignore[arg-type]
    registrar.resume(status)
    return registrar


def test_a_status_survives_the_round_trip_and_garbage_reads_as_none() -> None:
    """``decode_status(encode_status(s)) == s``; unreadable text is ``None``, not an error."""
    assert decode_status(encode_status(SYNCED)) == SYNCED
    assert decode_status(encode_status(RegistrarStatus())) == RegistrarStatus()
    assert decode_status("not json") is None
    assert decode_status("[1, 2]") is None


async def test_the_holder_publishes_its_status_and_a_standby_shows_it() -> None:
    """Only the role's holder writes; every receiver reads the same status back."""
    values = MemoryValues()
    holder = SharedStateSync(
        values,
        SigningSecrets(None),
        registrar=registrar_with(SYNCED),
        holds_registrar=lambda: True,
    )
    standby = SharedStateSync(
        values,
        SigningSecrets(None),
        registrar=registrar_with(RegistrarStatus(updates=9)),
        holds_registrar=lambda: False,
    )
    await standby.step()
    assert standby.registrar_status is None and REGISTRAR_KEY not in values.values
    await holder.step()
    await standby.step()
    assert standby.registrar_status == SYNCED == holder.registrar_status
    assert decode_status(values.values[REGISTRAR_KEY]) == SYNCED


async def test_a_shared_secret_is_taken_into_the_signing_secrets_without_being_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A secret published by one receiver is in force on the other after its next step."""
    caplog.set_level(logging.DEBUG)
    values = MemoryValues()
    mine, theirs = SigningSecrets("configured"), SigningSecrets("configured")
    publisher = SharedStateSync(values, mine)
    reader = SharedStateSync(values, theirs)
    await publisher.publish_secret("brand-new-secret")
    assert values.values[SECRET_KEY] == "brand-new-secret"
    await reader.step()
    assert theirs.current() == ["brand-new-secret", "configured"]
    await reader.step()  # the same secret again: nothing changes
    assert theirs.current() == ["brand-new-secret", "configured"]
    assert "brand-new-secret" not in caplog.text
    assert "brand-new-secret" not in repr(reader) + repr(publisher)


async def test_a_lost_database_is_waited_out_and_keeps_what_was_known() -> None:
    """A failing store leaves the last status and secrets in place, then sync resumes."""
    values = MemoryValues()
    secrets = SigningSecrets(None)
    sync = SharedStateSync(values, secrets, every=0.01)
    values.values = {REGISTRAR_KEY: encode_status(SYNCED), SECRET_KEY: "s1"}
    await sync.step()
    values.failing = True
    await sync.step()
    assert sync.registrar_status == SYNCED and secrets.current() == ["s1"]
    assert sync.last_error is not None and "database gone" in sync.last_error
    values.failing = False
    values.values[SECRET_KEY] = "s2"
    task = asyncio.create_task(sync.run_periodically())
    try:
        for _ in range(100):
            if "s2" in secrets.current():
                break
            await asyncio.sleep(0.01)
    finally:
        task.cancel()
    assert secrets.current()[0] == "s2" and sync.last_error is None


def test_sqlite_builds_no_sharing(tmp_path: Path) -> None:
    """With SQLite nothing is shared: the runtime has no sync, the status is the registrar's."""
    runtime = build_runtime(receiver_settings(tmp_path / "data"))
    assert runtime.sharing is None
    assert runtime.registrar_status() is None


def test_postgres_builds_the_sharing(tmp_path: Path) -> None:
    """With PostgreSQL the runtime shares through the store (nothing is opened to build it)."""
    settings = receiver_settings(
        tmp_path / "data", store="postgres", database_url="postgresql://u@127.0.0.1:1/none"
    )
    runtime = build_runtime(settings)
    assert runtime.sharing is not None
