"""The inbound HTTP adapter: Starlette routes for Frame.io and for operators."""

from postflow_webhooks.adapters.http.app import build_http_app
from postflow_webhooks.adapters.http.receiver import WebhookReceiver
from postflow_webhooks.adapters.http.views import StatusViews

__all__ = ["StatusViews", "WebhookReceiver", "build_http_app"]
