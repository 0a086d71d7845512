"""Discord: the notifier adapter that posts changes to an Execute Webhook URL."""

from postflow_webhooks.adapters.discord.config import DiscordConfig
from postflow_webhooks.adapters.discord.notifier import DiscordNotifier, destination_key, redact

__all__ = ["DiscordConfig", "DiscordNotifier", "destination_key", "redact"]
