"""``SharedStateSync``: the registrar's status and the signing secret, shared through the store.

With a shared store (PostgreSQL) several receivers answer ``/webhook-status``
and accept deliveries, but only one holds the registrar role and only one ran
``register``. Once a second (``SYNC_SECONDS``), each receiver's periodic task:

- if it holds the registrar role, writes the registrar's status when it changed;
- reads the shared rows: the registrar status every receiver then shows, and
  the signing secret, which goes into this receiver's ``SigningSecrets``.

So a secret stored anywhere is accepted everywhere within about a second, and
no request ever waits on the database for it: the request path reads only
memory. With SQLite there is nothing to share, and nothing of this is built.
The secret is never logged.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

import attrs

from postflow_webhooks.app.secrets import SigningSecrets
from postflow_webhooks.domain.errors import StorageError
from postflow_webhooks.service.registration import RegistrarStatus, WebhookRegistrar

log = logging.getLogger("postflow_webhooks")

SYNC_SECONDS = 1.0
REGISTRAR_KEY = "registrar_status"
SECRET_KEY = "webhook_secret"


class SharedValues(Protocol):
    """Small text values every receiver of one store reads (``PostgresSharedState``)."""

    async def read_all(self) -> dict[str, str]:
        """Every value kept, by key."""
        ...

    async def put(self, key: str, value: str) -> None:
        """Keep ``value`` under ``key``."""
        ...


def encode_status(status: RegistrarStatus) -> str:
    """The registrar's status as JSON (it holds no secret)."""
    data: dict[str, Any] = attrs.asdict(status)
    synced = status.last_synced_at
    data["last_synced_at"] = synced.isoformat() if synced is not None else None
    return json.dumps(data, sort_keys=True)


def decode_status(text: str) -> RegistrarStatus | None:
    """The status ``encode_status`` wrote; ``None`` if it cannot be read."""
    try:
        data = json.loads(text)
        synced = data.get("last_synced_at")
        return RegistrarStatus(
            webhook_id=data.get("webhook_id"),
            registered_url=data.get("registered_url"),
            wanted_url=data.get("wanted_url"),
            pending=bool(data.get("pending", False)),
            updates=int(data.get("updates", 0)),
            last_synced_at=datetime.fromisoformat(synced) if synced else None,
            last_error=data.get("last_error"),
        )
    except (ValueError, TypeError, AttributeError):
        return None


class SharedStateSync:
    """Publishes this receiver's share of the state and keeps its copy of the rest fresh."""

    def __init__(
        self,
        values: SharedValues,
        secrets: SigningSecrets,
        *,
        registrar: WebhookRegistrar | None = None,
        holds_registrar: Callable[[], bool] = lambda: False,
        every: float = SYNC_SECONDS,
    ) -> None:
        self._values = values
        self._secrets = secrets
        self._registrar = registrar
        self._holds_registrar = holds_registrar
        self._every = every
        self._published: RegistrarStatus | None = None
        self._secret_seen: str | None = None
        self.registrar_status: RegistrarStatus | None = None
        """The registrar status last read from the store (``None`` until one is there)."""
        self.last_error: str | None = None

    def __repr__(self) -> str:
        return f"SharedStateSync({self._values!r})"

    async def publish_secret(self, secret: str) -> None:
        """Share a new signing secret (the registrar created a webhook); never logged."""
        try:
            await self._values.put(SECRET_KEY, secret)
            self._secret_seen = secret
        except StorageError as exc:
            log.warning("could not share the new webhook signing secret: %s", exc)

    async def publish_registrar(self) -> None:
        """Write the registrar's status if this receiver holds the role and it changed."""
        if self._registrar is None or not self._holds_registrar():
            return
        status = self._registrar.status()
        if status != self._published:
            await self._values.put(REGISTRAR_KEY, encode_status(status))
            self._published = status
            self.registrar_status = status

    async def step(self) -> None:
        """Publish what is ours, then read what is shared; a store failure waits for next time."""
        try:
            await self.publish_registrar()
            found = await self._values.read_all()
        except StorageError as exc:
            self.last_error = str(exc)
            return
        self.last_error = None
        shown = found.get(REGISTRAR_KEY)
        if shown is not None:
            self.registrar_status = decode_status(shown) or self.registrar_status
        secret = found.get(SECRET_KEY)
        if secret and secret != self._secret_seen:
            self._secret_seen = secret
            self._secrets.add(secret)

    async def run_periodically(self) -> None:
        """``step`` once a second until cancelled."""
        while True:
            await asyncio.sleep(self._every)
            await self.step()
