"""Facts about the receiver's endpoint that more than one part needs."""

WEBHOOK_PATH = "/frameio-webhook"
"""Where Frame.io delivers: the path on the local port and behind the public URL."""

MAX_BODY_BYTES = 1024 * 1024
"""The largest delivery body accepted (1 MiB); larger ones get 413."""

MAX_SKEW_SECONDS = 300
"""How far a signed request's timestamp may be from this machine's clock, either way.

A signature accepted once is remembered this long, so a replay within the
window is recognised (and answered 202 ``duplicate`` without being journaled).
"""

MAX_EVENT_TYPES_SHOWN = 50
"""How many event types ``/webhook-status`` lists by name; the rest are summed as ``other``."""

MAX_EVENT_TYPE_LENGTH = 128
"""The longest event type accepted, in characters; longer ones get 422."""

MAX_ID_LENGTH = 256
"""The longest id (file, resource, comment, account, ...) accepted, in characters; 422 beyond."""


def webhook_url(base_url: str) -> str:
    """The delivery URL for a base URL (idempotent on a URL that already ends in the path)."""
    base = base_url.rstrip("/")
    return base if base.endswith(WEBHOOK_PATH) else base + WEBHOOK_PATH
