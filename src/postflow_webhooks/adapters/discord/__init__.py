"""Discord: the notifier adapter that posts status changes to an Execute Webhook URL."""

from postflow_webhooks.adapters.discord.notifier import DiscordNotifier, destination_key, redact
from postflow_webhooks.adapters.discord.settings import DiscordConfig, skip_reason

__all__ = ["DiscordConfig", "DiscordNotifier", "destination_key", "redact", "skip_reason"]
