"""Discord settings: one frozen value, read once from an environ mapping."""

from __future__ import annotations

from collections.abc import Mapping

import attrs
import httpx

from postflow_webhooks.domain.records import Notification, NotificationKind
from postflow_webhooks.domain.statuses import PostflowStatus

ENV_URL = "POSTFLOW_DISCORD_WEBHOOK_URL"
ENV_STATUSES = "POSTFLOW_DISCORD_STATUSES"
ENV_COMMENTS = "POSTFLOW_DISCORD_COMMENTS"
ENV_USERNAME = "POSTFLOW_DISCORD_USERNAME"
ENV_AVATAR_URL = "POSTFLOW_DISCORD_AVATAR_URL"
ENV_TIMEOUT = "POSTFLOW_DISCORD_TIMEOUT"

ALL_STATUSES: frozenset[PostflowStatus] = frozenset(PostflowStatus)
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})


class DiscordSettingError(ValueError):
    """A Discord setting is malformed; the message names the key, never a secret value."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key
        self.problem = problem


@attrs.frozen
class DiscordConfig:
    """Where and what to announce on Discord; no URL means notifications are skipped."""

    webhook_url: str | None = attrs.field(default=None, repr=False)
    statuses: frozenset[PostflowStatus] = ALL_STATUSES
    comments: bool = False
    username: str | None = None
    avatar_url: str | None = None
    timeout: float = 10.0
    connect_timeout: float = 5.0

    @property
    def enabled(self) -> bool:
        """True when a webhook URL is configured."""
        return bool(self.webhook_url)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> DiscordConfig:
        """Read the ``POSTFLOW_DISCORD_*`` keys; raise ``DiscordSettingError`` naming a bad key."""
        url = environ.get(ENV_URL, "").strip() or None
        if url is not None:
            _check_url(ENV_URL, url)
        avatar = environ.get(ENV_AVATAR_URL, "").strip() or None
        if avatar is not None:
            _check_url(ENV_AVATAR_URL, avatar)
        return cls(
            webhook_url=url,
            statuses=parse_statuses(environ.get(ENV_STATUSES)),
            comments=_parse_bool(ENV_COMMENTS, environ.get(ENV_COMMENTS)),
            username=environ.get(ENV_USERNAME, "").strip() or None,
            avatar_url=avatar,
            timeout=_parse_seconds(ENV_TIMEOUT, environ.get(ENV_TIMEOUT), 10.0),
        )


def parse_statuses(text: str | None) -> frozenset[PostflowStatus]:
    """Comma-separated status names (or labels); unset or ``all`` means every status."""
    if text is None or not text.strip() or text.strip().lower() == "all":
        return ALL_STATUSES
    if text.strip().lower() == "none":
        return frozenset()
    found: set[PostflowStatus] = set()
    for part in text.split(","):
        word = part.strip()
        if not word:
            continue
        status = PostflowStatus.from_text(word) or PostflowStatus.from_text(word.upper())
        if status is None:
            names = ", ".join(s.name for s in PostflowStatus)
            raise DiscordSettingError(ENV_STATUSES, f"unknown status {word!r} (known: {names})")
        found.add(status)
    return frozenset(found)


def skip_reason(config: DiscordConfig, notification: Notification) -> str | None:
    """Why this notification is not announced under ``config``; ``None`` to send it."""
    if not config.enabled:
        return "no Discord webhook URL configured"
    return filtered_out(config, notification)


def filtered_out(config: DiscordConfig, notification: Notification) -> str | None:
    """Why the status and comment settings keep this notification quiet; ``None`` to send it."""
    if notification.kind is NotificationKind.COMMENT:
        return None if config.comments else "comment notifications are off"
    status = notification.new_status
    if status is None:
        return "no status to announce"
    if status not in config.statuses:
        return f"status {status.name} is not announced"
    return None


def _check_url(key: str, url: str) -> None:
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError):
        raise DiscordSettingError(key, "not a valid URL") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise DiscordSettingError(key, "expected an http(s) URL with a host")


def _parse_bool(key: str, text: str | None) -> bool:
    word = (text or "").strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise DiscordSettingError(key, f"expected true or false, got {text!r}")


def _parse_seconds(key: str, text: str | None, default: float) -> float:
    if text is None or not text.strip():
        return default
    try:
        value = float(text)
    except ValueError:
        raise DiscordSettingError(key, f"expected seconds, got {text!r}") from None
    if value <= 0:
        raise DiscordSettingError(key, "expected a positive number of seconds")
    return value
