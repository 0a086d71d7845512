"""Posting deliveries to a running receiver as Frame.io would: signed, and refusals explained.

``simulate`` and ``send`` share this: the secret to sign with (the configured
one, else the one ``register`` stored), the request, and advice for an
answer that is not ``202``, naming the setting to change.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable
from typing import Any

import click
import httpx

from postflow_webhooks.adapters.http.signature import sign
from postflow_webhooks.app.settings import Settings
from postflow_webhooks.domain.endpoint import webhook_url

STORED_SECRET = "frameio_webhook_secret"
SECRET_FIX = (
    "set POSTFLOW_WEBHOOK_SECRET (or webhook_secret in {config}) here to the secret the "
    "receiver verifies with"
)


def signing_secret(settings: Settings) -> tuple[str | None, str]:
    """The secret to sign with, and where it came from (for messages); ``None`` if none."""
    if settings.webhook_secret:
        return settings.webhook_secret, "the configured webhook_secret"
    stored = settings.data_dir / STORED_SECRET
    try:
        text = stored.read_text(encoding="utf-8").strip()
    except OSError:
        return None, "no secret"
    return (text, f"the secret 'register' stored in {stored}") if text else (None, "no secret")


def post(http: httpx.Client, base: str, raw: bytes, secret: str | None) -> httpx.Response:
    """POST ``raw`` to the receiver's webhook, signed when there is a secret."""
    headers = {"Content-Type": "application/json", "User-Agent": "postflow-webhooks"}
    if secret:
        stamp = str(int(time.time()))
        headers["X-Frameio-Request-Timestamp"] = stamp
        headers["X-Frameio-Signature"] = sign(secret, stamp, raw)
    try:
        return http.post(webhook_url(base), content=raw, headers=headers)
    except httpx.HTTPError as exc:
        raise click.ClickException(
            f"no receiver answers at {base} ({type(exc).__name__}). Start it with "
            "'postflow-webhooks serve' (or 'make run'), or point --url at it."
        ) from None


def refusal(answer: httpx.Response) -> str:
    """``401 bad_signature``: the status code and the receiver's reason, when it gave one."""
    try:
        body = answer.json()
    except ValueError:
        body = None
    reason = None
    if isinstance(body, dict):
        reason = body.get("reason") or body.get("error")
    return f"{answer.status_code} {reason}" if reason else str(answer.status_code)


def advice(refusals: Iterable[str], settings: Settings, signed_with: str) -> str:
    """What to do about these refusals (``401 bad_signature``, ...), naming the setting."""
    config = settings.config_dir / "frameio_config.json"
    fix = SECRET_FIX.format(config=config)
    found = {r.split(" ", 1)[-1] for r in refusals}
    tips = []
    if found & {"missing_signature", "missing_timestamp"}:
        tips.append(f"the receiver requires signatures and there is no secret to sign with: {fix}")
    if "bad_signature" in found:
        tips.append(
            f"the receiver verifies with another secret than the one signed with here "
            f"({signed_with}): {fix} (after 'register', the one in <data dir>/{STORED_SECRET})"
        )
    if "no_secret_yet" in found:
        tips.append(
            "the receiver refuses every delivery until its Frame.io webhook is registered and "
            "it has the webhook's secret: run 'postflow-webhooks register PUBLIC_URL'"
        )
    if found & {"stale_timestamp", "future_timestamp"}:
        tips.append("this machine's clock and the receiver's differ by over 5 minutes: sync them")
    if found & {"not_json", "invalid_payload", "too_large"}:
        tips.append("the receiver could not read the payload; its answer lists the problems")
    if "storage_unavailable" in found:
        tips.append("the receiver cannot write its database: see 'postflow-webhooks healthcheck'")
    return "; ".join(tips)


def summary(refusals: Counter[str]) -> str:
    """``401 bad_signature x5, 422 invalid_payload x1``."""
    return ", ".join(f"{what} x{count}" for what, count in refusals.most_common())


def answer_text(answer: httpx.Response) -> Any:
    """The answer's JSON, or its text when it is not JSON."""
    try:
        return answer.json()
    except ValueError:
        return answer.text
