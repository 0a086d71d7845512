"""The facade's words: what PostFlow's tracker lacks, and each refusal with the facade's own fix."""

from __future__ import annotations

from postflow_webhooks.adapters.cloudflared import PublicExposureRefusedError
from postflow_webhooks.app.datadir import DataDirectoryError
from postflow_webhooks.app.server import PortInUseError
from postflow_webhooks.app.settings import Settings

TRACKER_METHODS = (
    "get_upload",
    "update_upload",
    "mark_processing",
    "mark_completed",
    "update_status",
)


def tracker_problem(tracker: object) -> str | None:
    """What PostFlow's tracker lacks that the receiver needs, in words; ``None`` if nothing."""
    if tracker is None:
        return None
    missing = [name for name in TRACKER_METHODS if not callable(getattr(tracker, name, None))]
    data = getattr(tracker, "tracking_data", None)
    if not isinstance(data, dict) or not isinstance(data.get("uploads", {}), dict):
        missing.insert(0, "tracking_data (a dict with an 'uploads' dict)")
    if not missing:
        return None
    return (
        f"the upload_tracker ({type(tracker).__name__}) lacks {', '.join(missing)}: pass "
        "PostFlow's UploadTracker, or an object with the same members"
    )


def facade_wording(exc: Exception) -> str:
    """The error, with the fix worded for the facade's arguments rather than CLI flags."""
    if isinstance(exc, PortInUseError) and exc.taken:
        return (
            f"port {exc.port} on {exc.host} is not available ({exc.reason}): another program, "
            "perhaps another receiver, is using it. Choose another port: "
            f"FrameIOWebhookManager(webhook_port={exc.port + 1}) (in PostFlow, its config's "
            "webhook.port)"
        )
    if isinstance(exc, DataDirectoryError):
        fix = (
            "Stop the other receiver, or give this manager its own data_dir="
            if exc.in_use
            else "Pass another data_dir= to FrameIOWebhookManager (or set POSTFLOW_DATA_DIR)"
        )
        return f"{exc.problem}. {fix}"
    if isinstance(exc, PublicExposureRefusedError):
        return (
            "refusing to expose the webhook receiver publicly without a signing secret: anyone "
            "who finds the URL could forge Frame.io events. Pass webhook_secret= (the secret "
            "Frame.io gave when the webhook was created), or frameio_auth= so the receiver can "
            "register its webhook and get one, or use_cloudflare_tunnel=False to stay local"
        )
    return str(exc)


def auth_problem(auth: object) -> str | None:
    """What is wrong with the host's Frame.io sign-in object, in words; ``None`` if nothing."""
    if auth is None or callable(getattr(auth, "get_access_token", None)):
        return None
    return (
        f"frameio_auth ({type(auth).__name__}) has no get_access_token() method: pass "
        "PostFlow's FrameIOAuth, or leave frameio_auth out"
    )


def named_tunnel_problem(settings: Settings) -> str | None:
    """A named tunnel without its hostname could never give a public URL; say what to set."""
    if settings.tunnel != "named" or settings.tunnel_hostname:
        return None
    return (
        "a named tunnel needs its public hostname: set POSTFLOW_TUNNEL_HOSTNAME (or "
        "tunnel_hostname in receiver.json) to the hostname you routed to the tunnel in Cloudflare"
    )
