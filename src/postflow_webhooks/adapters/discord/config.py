"""The Discord notifier's settings: one frozen value the composition root builds."""

from __future__ import annotations

import attrs


@attrs.frozen
class DiscordConfig:
    """Where to post and how the messages are signed; the URL is a secret."""

    webhook_url: str = attrs.field(repr=False)
    username: str | None = None
    avatar_url: str | None = None
    timeout: float = 10.0
    connect_timeout: float = 5.0
