"""Discord: the notifier adapter that posts status changes to an Execute Webhook URL."""

from postflow_webhooks.adapters.discord.notifier import DiscordNotifier, destination_key, redact
from postflow_webhooks.adapters.discord.settings import DiscordConfig, filtered_out, skip_reason

__all__ = [
    "DiscordConfig",
    "DiscordNotifier",
    "destination_key",
    "filtered_out",
    "redact",
    "skip_reason",
]
