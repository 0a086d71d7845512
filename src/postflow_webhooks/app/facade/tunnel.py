"""The ``tunnel_manager`` PostFlow's ``WebhookService`` looks at: health, info, a start."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from postflow_webhooks.app.presenters import present_tunnel
from postflow_webhooks.domain.endpoint import WEBHOOK_PATH
from postflow_webhooks.domain.ports import TunnelInfo

if TYPE_CHECKING:
    from postflow_webhooks.app.facade.manager import FrameIOWebhookManager


class PostflowTunnelManager:
    """What PostFlow 4.3 calls on ``manager.tunnel_manager``, over the receiver's own tunnel."""

    def __init__(self, manager: FrameIOWebhookManager) -> None:
        self._manager = manager

    def start_webhook_tunnel(self, timeout: float = 60.0) -> str | None:
        """Start the receiver and its tunnel; the public base URL, or ``None`` (see ``last_error``).

        The tunnel forwards to the receiver's port, so the receiver starts with it:
        deliveries through the tunnel are then verified and journaled as usual.
        """
        if not self._manager.start_webhook_server(tunnel_timeout=timeout):
            return None
        return self._manager.webhook_url

    def stop_webhook_tunnel(self) -> None:
        """Stop the receiver and its tunnel."""
        self._manager.stop()

    def is_tunnel_healthy(self) -> bool:
        """True while the tunnel has a live connection to Cloudflare's edge."""
        info = self._manager.tunnel_info()
        return info is not None and info.ready

    def get_tunnel_info(self) -> dict[str, Any]:
        """The tunnel's mode, state, public URL, readiness, restarts and last error."""
        return present_tunnel(self._manager.tunnel_info() or TunnelInfo(mode="quick"))

    def get_webhook_url(self, path: str = WEBHOOK_PATH) -> str | None:
        """The public URL of ``path``, once the tunnel has one."""
        base = self._manager.webhook_url
        return base.rstrip("/") + path if base else None
