"""``DiscordNotifier``: posts one notification to an Execute Webhook URL with httpx.

The URL holds the webhook's token, so it is a secret: it never appears in a
repr, an exception or a log line. ``redact`` gives the form shown to people
(``discord webhook …/1234``) and ``destination_key`` a stable hash used to
save the destination's state.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from typing import Any

import httpx

from postflow_webhooks.adapters.discord.config import DiscordConfig
from postflow_webhooks.adapters.discord.embed import build_message
from postflow_webhooks.adapters.discord.ratelimit import (
    MonotonicClock,
    RateLimitSnapshot,
    RateLimitState,
    WallClock,
    retry_after_from,
)
from postflow_webhooks.domain.errors import (
    DestinationBrokenError,
    RateLimitedError,
    RejectedError,
    TransientError,
)
from postflow_webhooks.domain.records import Notification

log = logging.getLogger(__name__)

DEFAULT_RETRY_AFTER = 5.0
_WEBHOOK_ID = re.compile(r"/webhooks/(\d+)")
_BROKEN = (401, 403, 404)
_MESSAGE_LIMIT = 300


def destination_key(url: str) -> str:
    """A stable, non-reversible key for a webhook URL (what ``DestinationState.key`` holds)."""
    digest = hashlib.sha256(url.strip().encode("utf-8")).hexdigest()
    return f"discord:{digest[:16]}"


def redact(url: str) -> str:
    """The URL as people may see it: the last digits of the webhook id, never the token."""
    found = _WEBHOOK_ID.search(url)
    if found:
        return f"discord webhook …/{found.group(1)[-4:]}"
    return f"discord webhook …{destination_key(url)[-4:]}"


class _RedactFilter(logging.Filter):
    """Replaces known webhook URLs in httpx's own log records with their redacted form."""

    def __init__(self) -> None:
        super().__init__("postflow-discord-redact")
        self.secrets: dict[str, str] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        text = record.getMessage()
        changed = text
        for secret, shown in self.secrets.items():
            changed = changed.replace(secret, shown)
        if changed != text:
            record.msg, record.args = changed, None
        return True


_FILTER = _RedactFilter()


def _guard_logs(url: str) -> None:
    """Make sure httpx and httpcore log records never carry ``url`` or its token."""
    parsed = httpx.URL(url)
    shown = redact(url)
    _FILTER.secrets[str(parsed.copy_with(query=None))] = shown
    token = parsed.path.rstrip("/").rsplit("/", 1)[-1]
    if len(token) >= 16:
        _FILTER.secrets[token] = "<token>"
    for name in ("httpx", "httpcore"):
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)


class DiscordNotifier:
    """Posts notifications to one Discord webhook; fits the ``Notifier`` port."""

    def __init__(
        self,
        config: DiscordConfig,
        *,
        client: httpx.AsyncClient | None = None,
        monotonic: MonotonicClock = time.monotonic,
        wall: WallClock = time.time,
    ) -> None:
        self._config = config
        self._url = httpx.URL(config.webhook_url).copy_merge_params({"wait": "true"})
        self._key = destination_key(config.webhook_url)
        self._label = redact(config.webhook_url)
        self._own_client = client is None
        timeout = httpx.Timeout(config.timeout, connect=config.connect_timeout)
        self._client = client or httpx.AsyncClient(timeout=timeout, follow_redirects=False)
        self._timeout = timeout
        self.rate_limit = RateLimitState(monotonic=monotonic, wall=wall)
        _guard_logs(config.webhook_url)

    def __repr__(self) -> str:
        return f"DiscordNotifier({self._label})"

    @property
    def key(self) -> str:
        """The destination key: a hash of the URL."""
        return self._key

    @property
    def label(self) -> str:
        """The redacted URL, safe for logs and status pages."""
        return self._label

    def ready_in(self) -> float:
        """Seconds the bucket asks us to wait before the next request."""
        return self.rate_limit.delay()

    def rate_limit_snapshot(self) -> RateLimitSnapshot:
        """The bucket as last reported by Discord."""
        return self.rate_limit.snapshot()

    async def aclose(self) -> None:
        """Close the HTTP client if this notifier created it."""
        if self._own_client:
            await self._client.aclose()

    async def send(self, notification: Notification) -> None:
        """Post one embed; raise a ``NotifierError`` subclass saying what to do when it fails."""
        body = build_message(
            notification, username=self._config.username, avatar_url=self._config.avatar_url
        )
        self.rate_limit.sent()
        try:
            response = await self._client.post(self._url, json=body, timeout=self._timeout)
        except httpx.TimeoutException as exc:
            raise TransientError(f"{self._label}: timed out ({type(exc).__name__})") from None
        except httpx.TransportError as exc:
            raise TransientError(f"{self._label}: network error ({type(exc).__name__})") from None
        self.rate_limit.observe(response.headers)
        self._raise_for(response)

    def _raise_for(self, response: httpx.Response) -> None:
        status = response.status_code
        if 200 <= status < 300:
            return
        payload = _json(response)
        detail = _describe(payload, response)
        if status == 429:
            retry_after = retry_after_from(response.headers, payload, DEFAULT_RETRY_AFTER)
            self.rate_limit.block(retry_after)
            scope = "global " if isinstance(payload, dict) and payload.get("global") else ""
            raise RateLimitedError(
                f"{self._label}: {scope}rate limited for {retry_after:.3f}s ({detail})",
                retry_after,
            )
        if status in _BROKEN:
            raise DestinationBrokenError(f"{self._label}: {status} {detail}")
        if status >= 500 or status == 408:
            raise TransientError(f"{self._label}: {status} {detail}")
        raise RejectedError(f"{self._label}: {status} {detail}")


def _json(response: httpx.Response) -> object:
    if "json" not in response.headers.get("content-type", ""):
        return None
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


def _describe(payload: object, response: httpx.Response) -> str:
    """Discord's message and code (and field errors), or the reason phrase for non-JSON bodies."""
    if isinstance(payload, dict) and isinstance(payload.get("message"), str):
        text = payload["message"]
        if "code" in payload:
            text += f" (code {payload['code']})"
        errors = payload.get("errors")
        if errors:
            text += f": {_flatten(errors)}"
        return str(text)[:_MESSAGE_LIMIT]
    kind = response.headers.get("content-type", "no body").split(";")[0]
    return f"{response.reason_phrase or 'error'} ({kind})"


def _flatten(errors: Any, path: str = "") -> str:
    """Discord's nested ``errors`` object as ``embeds.0.title: message`` pairs."""
    found: list[str] = []

    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            messages = node.get("_errors")
            if isinstance(messages, list):
                for item in messages:
                    if isinstance(item, dict) and "message" in item:
                        found.append(f"{where or 'body'}: {item['message']}")
            for key, value in node.items():
                if key != "_errors":
                    walk(value, f"{where}.{key}" if where else str(key))

    walk(errors, path)
    return "; ".join(found)
