"""Frame.io V4 API adapter: IMS auth, file details, webhook registration."""

from __future__ import annotations

from postflow_webhooks.adapters.frameio.adapter import FrameioAdapter
from postflow_webhooks.adapters.frameio.auth import ImsAuth
from postflow_webhooks.adapters.frameio.callback import open_in_browser
from postflow_webhooks.adapters.frameio.client import FrameioClient, parse_retry_after, retry_policy
from postflow_webhooks.adapters.frameio.config import AuthFlow, FrameioConfig
from postflow_webhooks.adapters.frameio.details import FrameioFileDetails
from postflow_webhooks.adapters.frameio.directory import FrameioDirectory
from postflow_webhooks.adapters.frameio.errors import (
    FrameioApiError,
    FrameioAuthError,
    FrameioConfigError,
    FrameioError,
    FrameioRateLimitedError,
)
from postflow_webhooks.adapters.frameio.tokens import Token, TokenCache, TokenSummary
from postflow_webhooks.adapters.frameio.webhooks import (
    HANDLED_EVENTS,
    FrameioWebhooks,
    Pacer,
    Registration,
    SecretFile,
    WebhookInfo,
)

__all__ = [
    "HANDLED_EVENTS",
    "AuthFlow",
    "FrameioAdapter",
    "FrameioApiError",
    "FrameioAuthError",
    "FrameioClient",
    "FrameioConfig",
    "FrameioConfigError",
    "FrameioDirectory",
    "FrameioError",
    "FrameioFileDetails",
    "FrameioRateLimitedError",
    "FrameioWebhooks",
    "ImsAuth",
    "Pacer",
    "Registration",
    "SecretFile",
    "Token",
    "TokenCache",
    "TokenSummary",
    "WebhookInfo",
    "open_in_browser",
    "parse_retry_after",
    "retry_policy",
]
