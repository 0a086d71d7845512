"""Our workspace webhook in Frame.io: register (create or update by name), follow URLs, remove."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs

from postflow_webhooks.adapters.frameio.client import FrameioClient, JsonObject, Sleep
from postflow_webhooks.adapters.frameio.config import WEBHOOK_NAME
from postflow_webhooks.adapters.frameio.errors import FrameioApiError
from postflow_webhooks.adapters.frameio.private_files import (
    read_private,
    remove_private,
    write_private,
)
from postflow_webhooks.domain.endpoint import webhook_url
from postflow_webhooks.domain.ports import RegisteredWebhook

log = logging.getLogger("postflow_webhooks.frameio")

HANDLED_EVENTS = (
    "file.created",
    "file.upload.completed",
    "file.ready",
    "file.versioned",
    "file.deleted",
    "file.updated",
    "metadata.value.updated",
    "comment.created",
    "comment.updated",
    "comment.deleted",
    "comment.completed",
    "comment.uncompleted",
)
MUTATION_INTERVAL = 6.0  # create and update: 10 calls a minute


@attrs.frozen
class WebhookInfo:
    """Our webhook as Frame.io lists it (lists never include the secret)."""

    id: str
    name: str
    url: str
    events: tuple[str, ...] = ()
    active: bool | None = None

    @classmethod
    def from_api(cls, data: JsonObject) -> WebhookInfo:
        """Read one webhook object of a V4 answer."""
        events = data.get("events")
        active = data.get("active", data.get("is_active"))
        return cls(
            id=str(data.get("id", "")),
            name=str(data.get("name", "")),
            url=str(data.get("url", "")),
            events=tuple(str(e) for e in events) if isinstance(events, list) else (),
            active=active if isinstance(active, bool) else None,
        )


@attrs.frozen
class Registration:
    """The outcome of ``register``: our webhook and the signing secret to verify with."""

    webhook: WebhookInfo
    secret: str | None = attrs.field(repr=False)
    created: bool


class SecretFile:
    """The webhook signing secret on disk, owner-only (0600)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> str | None:
        """The stored secret, or ``None``."""
        raw = read_private(self.path)
        text = raw.decode().strip() if raw is not None else ""
        return text or None

    def save(self, secret: str) -> None:
        """Store the secret (0600, atomic)."""
        write_private(self.path, secret.encode() + b"\n")

    def clear(self) -> bool:
        """Delete the stored secret; True if there was one."""
        return remove_private(self.path)


class Pacer:
    """Spaces calls at least ``interval`` seconds apart, one at a time."""

    def __init__(
        self,
        interval: float = MUTATION_INTERVAL,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.interval = interval
        self._monotonic = monotonic
        self._sleep = sleep
        self._last: float | None = None
        self.lock = asyncio.Lock()

    async def wait_turn(self) -> None:
        """Sleep until the next call is allowed, then claim it (hold ``lock`` around this)."""
        if self._last is not None:
            delay = self._last + self.interval - self._monotonic()
            if delay > 0:
                await self._sleep(delay)
        self._last = self._monotonic()


class FrameioWebhooks:
    """Create, find, update and delete the workspace webhook named ``name``."""

    def __init__(
        self,
        client: FrameioClient,
        *,
        account_id: str,
        workspace_id: str,
        secret_file: SecretFile,
        name: str = WEBHOOK_NAME,
        events: tuple[str, ...] = HANDLED_EVENTS,
        pacer: Pacer | None = None,
    ) -> None:
        self._client = client
        self._account = account_id
        self._workspace = workspace_id
        self.secret_file = secret_file
        self.name = name
        self.events = events
        self._pacer = pacer or Pacer()
        self._known_id: str | None = None

    async def find(self) -> WebhookInfo | None:
        """Our webhook, found by name in the workspace's paginated list."""
        ours = await self._ours()
        found = ours[0] if ours else None
        self._known_id = found.id if found else None
        return found

    async def point_at(self, url: str, *, create: bool) -> RegisteredWebhook | None:
        """Point our webhook at ``url``; create it when ``create`` (the ``WebhookRegistry`` port)."""
        if create:
            registration = await self.register(url)
            info = registration.webhook
            secret = registration.secret if registration.created else None
            return RegisteredWebhook(webhook_id=info.id, url=info.url or url, secret=secret)
        updated = await self.update_url(url)
        if updated is None:
            return None
        return RegisteredWebhook(webhook_id=updated.id, url=updated.url or url)

    async def register(self, public_url: str) -> Registration:
        """Point our webhook at ``public_url``: update it if it exists, else create it."""
        url = webhook_url(public_url)
        ours = await self._ours()
        for extra in ours[1:]:
            log.warning("deleting duplicate Frame.io webhook %s named %r", extra.id, self.name)
            await self._delete(extra.id)
        secret = self.secret_file.load()
        if ours and secret is not None:
            body = {"url": url, "events": list(self.events), "name": self.name, "active": True}
            info = await self._patch(ours[0].id, body)
            return Registration(webhook=info, secret=secret, created=False)
        if ours:
            log.warning(
                "no stored secret for Frame.io webhook %s: deleting and recreating it", ours[0].id
            )
            await self._delete(ours[0].id)
        return await self._create(url)

    async def update_url(self, public_url: str) -> WebhookInfo | None:
        """Change our webhook's URL; ``None`` when there is no webhook of ours to change."""
        url = webhook_url(public_url)
        webhook_id = self._known_id
        if webhook_id is None:
            found = await self.find()
            if found is None:
                return None
            webhook_id = found.id
        try:
            return await self._patch(webhook_id, {"url": url})
        except FrameioApiError as exc:
            if exc.status != 404:
                raise
        self._known_id = None
        found = await self.find()
        return await self._patch(found.id, {"url": url}) if found is not None else None

    async def unregister(self) -> bool:
        """Delete our webhook(s) and the stored secret; True if Frame.io had one."""
        ours = await self._ours()
        for info in ours:
            await self._delete(info.id)
        self._known_id = None
        self.secret_file.clear()
        return bool(ours)

    async def _ours(self) -> list[WebhookInfo]:
        path = f"/v4/accounts/{self._account}/workspaces/{self._workspace}/webhooks"
        return [
            info
            async for item in self._client.paginate(path)
            if (info := WebhookInfo.from_api(item)).name == self.name
        ]

    async def _create(self, url: str) -> Registration:
        path = f"/v4/accounts/{self._account}/workspaces/{self._workspace}/webhooks"
        body = {"data": {"name": self.name, "url": url, "events": list(self.events)}}
        async with self._pacer.lock:
            await self._pacer.wait_turn()
            answer = await self._client.send_json("POST", path, body)
        data = _data(answer)
        secret = data.get("secret")
        info = WebhookInfo.from_api(data)
        self._known_id = info.id
        if isinstance(secret, str) and secret:
            self.secret_file.save(secret)
        else:
            log.error(
                "Frame.io created webhook %s without a secret; signatures cannot be checked",
                info.id,
            )
            secret = None
        log.info("created Frame.io webhook %s -> %s", info.id, info.url)
        return Registration(webhook=info, secret=secret, created=True)

    async def _patch(self, webhook_id: str, changes: dict[str, Any]) -> WebhookInfo:
        path = f"/v4/accounts/{self._account}/webhooks/{webhook_id}"
        async with self._pacer.lock:
            await self._pacer.wait_turn()
            answer = await self._client.send_json("PATCH", path, {"data": changes})
        info = WebhookInfo.from_api(_data(answer))
        self._known_id = info.id or webhook_id
        log.info("updated Frame.io webhook %s -> %s", self._known_id, info.url)
        return info

    async def delete(self, webhook_id: str) -> None:
        """Delete one webhook by id (gone already is fine)."""
        await self._delete(webhook_id)

    async def _delete(self, webhook_id: str) -> None:
        path = f"/v4/accounts/{self._account}/webhooks/{webhook_id}"
        await self._client.request("DELETE", path, allow=(404,))
        log.info("deleted Frame.io webhook %s", webhook_id)


def _data(answer: JsonObject) -> JsonObject:
    data = answer.get("data")
    return data if isinstance(data, dict) else answer
