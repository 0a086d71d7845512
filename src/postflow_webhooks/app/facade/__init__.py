"""The PostFlow facade: ``FrameIOWebhookManager``, PostFlow 4.3's webhook manager over our receiver."""

from postflow_webhooks.app.facade.manager import FrameIOWebhookManager, WebhookData

__all__ = ["FrameIOWebhookManager", "WebhookData"]
