"""``doctor``'s Discord lines: the status channel, each route's, and the alerts channel."""

from __future__ import annotations

import httpx

from postflow_webhooks.adapters.discord import redact
from postflow_webhooks.app.settings import Settings

Check = tuple[str, bool, str]


def check_discord(settings: Settings) -> Check:
    """Each Discord webhook answers (a GET shows the webhook without posting anything)."""
    targets = [("", settings.discord_webhook_url)] if settings.discord_webhook_url else []
    targets += [(f"route {r.project!r}: ", r.webhook_url) for r in settings.discord_routes]
    if not targets:
        return ("discord", True, "not configured: no notifications are sent")
    answers, ok, refused = [], True, False
    for name, url in targets:
        fine, said = _discord_answers(url)
        answers.append(f"{name}{said}")
        ok = ok and fine
        refused = refused or " answered " in said
    if refused:
        answers.append(
            "the webhook was deleted or its token is wrong; create a new one in Discord and set "
            "POSTFLOW_DISCORD_WEBHOOK_URL (or the route's webhook_url in discord_routes)"
        )
    return ("discord", ok, "; ".join(answers))


def _discord_answers(url: str) -> tuple[bool, str]:
    label = redact(url)
    try:
        answer = httpx.get(url, timeout=5)
    except httpx.HTTPError as exc:
        return False, f"{label} did not answer ({type(exc).__name__}); check the network"
    if answer.status_code == 200:
        return True, f"{label} answers"
    return False, f"{label} answered {answer.status_code}"


def check_discord_alerts(settings: Settings) -> Check:
    """The Discord webhook for alerts answers, when alerts have a channel of their own."""
    url = settings.discord_alerts_url
    if not url or url == settings.discord_webhook_url:
        if not settings.discord_webhook_url:
            return ("discord alerts", True, "not configured: no alert is sent")
        return ("discord alerts", True, "no channel of their own: alerts go to the status channel")
    fine, said = _discord_answers(url)
    if not fine and " answered " in said:
        said += (
            "; the webhook was deleted or its token is wrong; create a new one in Discord and set "
            "POSTFLOW_DISCORD_ALERTS_URL"
        )
    return ("discord alerts", fine, said)
