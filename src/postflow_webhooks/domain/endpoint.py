"""Facts about the receiver's endpoint that more than one part needs."""

WEBHOOK_PATH = "/frameio-webhook"
"""Where Frame.io delivers: the path on the local port and behind the public URL."""

MAX_BODY_BYTES = 1024 * 1024
"""The largest delivery body accepted (1 MiB); larger ones get 413."""


def webhook_url(base_url: str) -> str:
    """The delivery URL for a base URL (idempotent on a URL that already ends in the path)."""
    base = base_url.rstrip("/")
    return base if base.endswith(WEBHOOK_PATH) else base + WEBHOOK_PATH
