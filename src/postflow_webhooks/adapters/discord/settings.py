"""Discord settings: one frozen value (the app builds it from ``Settings``), and what it filters."""

from __future__ import annotations

import attrs

from postflow_webhooks.domain.records import Notification, NotificationKind
from postflow_webhooks.domain.statuses import PostflowStatus

ALL_STATUSES: frozenset[PostflowStatus] = frozenset(PostflowStatus)


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
