"""postflow-webhooks: a durable, signed Frame.io webhook receiver for PostFlow.

The public entry points are the app factory and the PostFlow facade::

    from postflow_webhooks import FrameIOWebhookManager, create_app

Both are imported lazily so that importing the package does no wiring.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["FrameIOWebhookManager", "create_app"]
__version__ = "0.2.0"

if TYPE_CHECKING:
    from postflow_webhooks.app.composition import create_app
    from postflow_webhooks.app.facade import FrameIOWebhookManager


def __getattr__(name: str) -> Any:
    """Resolve the public names on first use (PEP 562)."""
    if name == "create_app":
        from postflow_webhooks.app.composition import create_app

        return create_app
    if name == "FrameIOWebhookManager":
        from postflow_webhooks.app.facade import FrameIOWebhookManager

        return FrameIOWebhookManager
    raise AttributeError(name)
