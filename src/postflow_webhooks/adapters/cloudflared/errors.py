"""The tunnel adapter's errors: each is a domain ``TunnelError`` whose message names the fix."""

from __future__ import annotations

import sys

from postflow_webhooks.domain.errors import TunnelError

INSTALL_HINTS: dict[str, str] = {
    "darwin": "macOS: brew install cloudflared",
    "win32": (
        "Windows: download cloudflared-windows-amd64.exe from "
        "https://github.com/cloudflare/cloudflared/releases and put it on PATH"
    ),
    "linux": (
        "Linux: curl -L https://github.com/cloudflare/cloudflared/releases/latest/download/"
        "cloudflared-linux-amd64.deb -o cloudflared.deb && sudo dpkg -i cloudflared.deb"
    ),
}


def install_hint(platform: str | None = None) -> str:
    """The install command for ``platform`` (default: this machine), else every known one."""
    key = platform if platform is not None else sys.platform
    for prefix, hint in INSTALL_HINTS.items():
        if key.startswith(prefix):
            return hint
    return "; ".join(INSTALL_HINTS.values())


class CloudflaredError(TunnelError):
    """Base class of the cloudflared adapter's errors."""


class CloudflaredNotInstalledError(CloudflaredError):
    """No cloudflared executable where we looked."""

    def __init__(self, looked_for: str, platform: str | None = None) -> None:
        self.looked_for = looked_for
        self.hint = install_hint(platform)
        super().__init__(
            f"cloudflared not found ({looked_for}). Install it ({self.hint}), "
            "or set POSTFLOW_CLOUDFLARED to the executable's full path."
        )


class CloudflaredTooOldError(CloudflaredError):
    """This cloudflared predates the features the adapter relies on (``/quicktunnel``)."""

    def __init__(self, version: str | None, minimum: str) -> None:
        self.version = version
        self.minimum = minimum
        shown = version or "unknown version"
        super().__init__(
            f"cloudflared {shown} is too old: version {minimum} or later is needed "
            f"(it serves the public hostname at /quicktunnel). Upgrade it ({install_hint()})."
        )


class MetricsPortInUseError(CloudflaredError):
    """The metrics address given to cloudflared is already taken by another program."""

    def __init__(self, address: str) -> None:
        self.address = address
        super().__init__(
            f"the cloudflared metrics address {address} is already in use. Stop the other "
            "cloudflared (or program) holding it, or set the metrics port to 0 to pick a free one."
        )


class InvalidTunnelTokenError(CloudflaredError):
    """cloudflared refused the named tunnel's token (exit 255)."""

    def __init__(self) -> None:
        super().__init__(
            "cloudflared says the tunnel token is not valid (exit 255). Copy the token again "
            "from the Cloudflare dashboard (Zero Trust > Networks > Tunnels > your tunnel) into "
            "TUNNEL_TOKEN or the token file; the token itself is never logged."
        )


class TunnelNeverReadyError(CloudflaredError):
    """cloudflared ran but registered no connection with Cloudflare's edge in time."""

    def __init__(self, timeout: float, protocol: str, last_line: str | None) -> None:
        self.timeout = timeout
        self.protocol = protocol
        self.last_line = last_line
        detail = f" Last line: {last_line}" if last_line else ""
        super().__init__(
            f"cloudflared registered no edge connection within {timeout:g}s (edge unreachable). "
            "Check outbound access to Cloudflare on port 7844 (TCP for http2, UDP for quic); "
            f"the protocol in use is {protocol}, try http2 if a firewall blocks UDP.{detail}"
        )


class TunnelRateLimitedError(CloudflaredError):
    """trycloudflare.com refused to create another quick tunnel for now (1015 / 429)."""

    def __init__(self) -> None:
        super().__init__(
            "trycloudflare.com rate-limited quick tunnel creation (error 1015, 429 Too Many "
            "Requests). Wait a few minutes before starting again, or use a named tunnel "
            "(POSTFLOW_TUNNEL=named) which is not rate-limited."
        )


class CloudflaredExitedError(CloudflaredError):
    """cloudflared exited on its own; carries the exit code and its last line."""

    def __init__(self, returncode: int | None, last_line: str | None) -> None:
        self.returncode = returncode
        self.last_line = last_line
        detail = f": {last_line}" if last_line else ""
        super().__init__(
            f"cloudflared exited with code {returncode}{detail}. See logs/webhook_tunnel.log; "
            "if it cannot reach api.trycloudflare.com, check DNS and outbound HTTPS."
        )


class PublicExposureRefusedError(TunnelError):
    """Refused to publish the receiver without a webhook secret."""

    def __init__(self) -> None:
        super().__init__(
            "refusing to expose the webhook receiver publicly without a webhook secret: anyone "
            "who finds the URL could forge Frame.io events. Set POSTFLOW_WEBHOOK_SECRET (or "
            "webhook_secret in config/frameio_config.json) to the secret Frame.io gave when the "
            "webhook was created; with the Frame.io API configured, 'serve' can register the "
            "webhook and get one. For a throwaway experiment only, set "
            "POSTFLOW_ALLOW_INSECURE_PUBLIC=1 (--allow-insecure-public)."
        )


class TunnelSettingsError(CloudflaredError, ValueError):
    """The tunnel's settings cannot work (a named tunnel without its token, say); names them."""

    def __init__(self, problem: str) -> None:
        self.problem = problem
        super().__init__(problem)


#: Errors that another attempt cannot fix: the operator must act.
PERMANENT_ERRORS: tuple[type[CloudflaredError], ...] = (
    CloudflaredNotInstalledError,
    CloudflaredTooOldError,
    MetricsPortInUseError,
    InvalidTunnelTokenError,
)
