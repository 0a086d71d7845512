"""The cloudflared adapter: a supervised Cloudflare tunnel behind the ``Tunnel`` port."""

from postflow_webhooks.adapters.cloudflared.check import CloudflaredCheck, check_cloudflared
from postflow_webhooks.adapters.cloudflared.config import (
    CloudflaredConfig,
    RestartPolicy,
    public_exposure_allowed,
    require_complete,
    require_public_exposure_allowed,
)
from postflow_webhooks.adapters.cloudflared.errors import (
    CloudflaredError,
    CloudflaredExitedError,
    CloudflaredNotInstalledError,
    CloudflaredTooOldError,
    InvalidTunnelTokenError,
    MetricsPortInUseError,
    PublicExposureRefusedError,
    TunnelNeverReadyError,
    TunnelRateLimitedError,
    TunnelSettingsError,
)
from postflow_webhooks.adapters.cloudflared.supervisor import restart_retrying
from postflow_webhooks.adapters.cloudflared.tunnel import MINIMUM_VERSION, CloudflaredTunnel

__all__ = [
    "MINIMUM_VERSION",
    "CloudflaredCheck",
    "CloudflaredConfig",
    "CloudflaredError",
    "CloudflaredExitedError",
    "CloudflaredNotInstalledError",
    "CloudflaredTooOldError",
    "CloudflaredTunnel",
    "InvalidTunnelTokenError",
    "MetricsPortInUseError",
    "PublicExposureRefusedError",
    "RestartPolicy",
    "TunnelNeverReadyError",
    "TunnelRateLimitedError",
    "TunnelSettingsError",
    "check_cloudflared",
    "public_exposure_allowed",
    "require_complete",
    "require_public_exposure_allowed",
    "restart_retrying",
]
