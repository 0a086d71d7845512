"""``doctor``: check everything the receiver depends on; each line is ok or the fix."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Callable
from typing import Any

import click
import httpx

from postflow_webhooks.adapters.cloudflared import check_cloudflared
from postflow_webhooks.adapters.discord import redact
from postflow_webhooks.adapters.frameio import (
    FrameioAdapter,
    FrameioConfigError,
    FrameioError,
    retry_policy,
)
from postflow_webhooks.app.cli.common import emit_json
from postflow_webhooks.app.cli.doctor_frameio import check_frameio
from postflow_webhooks.app.cli.doctor_store import check_store
from postflow_webhooks.app.composition import frameio_config
from postflow_webhooks.app.settings import Settings, SettingsError
from postflow_webhooks.domain.mapping import fold_status

Check = tuple[str, bool, str]


def check_settings(
    settings_for: Callable[[dict[str, Any]], Settings],
) -> tuple[Check, Settings | None]:
    """The configuration files and variables read cleanly."""
    try:
        settings = settings_for({})
    except click.ClickException as exc:
        return ("configuration", False, exc.message), None
    except SettingsError as exc:
        return ("configuration", False, str(exc)), None
    return ("configuration", True, f"read (config dir {settings.config_dir})"), settings


def check_secret(settings: Settings) -> Check:
    """A signing secret is set."""
    if settings.webhook_secret:
        return ("signing secret", True, "set; signatures are verified")
    return (
        "signing secret",
        False,
        "not set: anyone can post deliveries. Set POSTFLOW_WEBHOOK_SECRET (or run "
        "'postflow-webhooks register', which stores Frame.io's secret)",
    )


def check_data_dir(settings: Settings) -> Check:
    """The data directory exists (or can be made) and is writable."""
    path = settings.data_dir
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return (
            "data directory",
            False,
            f"cannot create {path}: {exc.strerror}; choose another with --data-dir",
        )
    if not os.access(path, os.W_OK):
        return ("data directory", False, f"{path} is not writable; fix its permissions")
    return ("data directory", True, f"{path} is writable")


def check_port(settings: Settings) -> Check:
    """The receiver's port is free (or a receiver already answers on it)."""
    with socket.socket() as sock:
        try:
            sock.bind((settings.host, settings.port))
        except OSError:
            try:
                httpx.get(f"{settings.local_url}/health", timeout=2)
            except httpx.HTTPError:
                return (
                    "port",
                    False,
                    f"{settings.port} is taken by another program; choose another with "
                    f"--port or POSTFLOW_PORT, or find it with: lsof -i :{settings.port}",
                )
            return ("port", True, f"{settings.port}: a receiver is already running there")
    return ("port", True, f"{settings.port} on {settings.host} is free")


def check_tunnel(settings: Settings) -> Check:
    """cloudflared is installed and recent enough (a problem only when the tunnel is on)."""
    try:
        found = check_cloudflared(settings.cloudflared)
    except Exception as exc:  # every error names its fix
        if settings.tunnel == "off":
            return (
                "cloudflared",
                True,
                f"not usable, but not needed while the tunnel is off ({exc})",
            )
        return ("cloudflared", False, str(exc))
    return ("cloudflared", True, f"{found.version} at {found.executable}")


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


def check_review_field(settings: Settings) -> Check:
    """The review field's options in Frame.io, beside what each is configured to mean."""
    mapping = settings.review_mapping
    meanings = {fold_status(name): status for name, status in mapping.options}
    configured = "; ".join(
        f"{name} -> {status.name if status else 'no decision'}" for name, status in mapping.options
    )
    try:
        config = frameio_config(settings)
    except FrameioConfigError as exc:
        return ("review field", False, str(exc))
    if config is None:
        return (
            "review field",
            True,
            f"{mapping.field!r} mapped as: {configured} (no Frame.io API credentials, so the "
            "field's options in Frame.io are not checked)",
        )

    async def look() -> tuple[str, list[str]] | None:
        adapter = FrameioAdapter(config, retrying=retry_policy(attempts=2))
        try:
            return await adapter.directory.field_options(mapping.field)
        finally:
            await adapter.aclose()

    try:
        found = asyncio.run(look())
    except FrameioError as exc:
        return (
            "review field",
            True,
            f"{mapping.field!r} mapped as: {configured} (Frame.io could not be asked: {exc})",
        )
    if found is None:
        return (
            "review field",
            False,
            f"Frame.io has no metadata field {mapping.field!r} in account {config.account_id}; "
            "set review_field (POSTFLOW_REVIEW_FIELD) to your review field's name or id",
        )
    name, options = found
    shown, unmapped = [], []
    for option in options:
        folded = fold_status(option)
        if folded not in meanings:
            unmapped.append(option)
            shown.append(f"{option} -> unmapped")
            continue
        status = meanings[folded]
        shown.append(f"{option} -> {status.name if status else 'no decision'}")
    listing = f"{name!r} in Frame.io: {'; '.join(shown) or 'no options'}"
    if unmapped:
        wanted = ", ".join(f'"{option}": "<STATUS or null>"' for option in unmapped)
        return (
            "review field",
            False,
            f"{listing}. These options decide nothing; add them to review_options "
            f"(POSTFLOW_REVIEW_OPTIONS), e.g. {{{wanted}}}",
        )
    return ("review field", True, listing)


def register(group: click.Group, settings_for: Callable[[dict[str, Any]], Settings]) -> None:
    """Add ``doctor`` to the CLI group."""

    @group.command()
    @click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
    def doctor(as_json: bool) -> None:
        """Check configuration, secret, data directory, database, port, cloudflared, Discord, Frame.io."""
        first, settings = check_settings(settings_for)
        checks = [first]
        if settings is not None:
            for check in (
                check_secret,
                check_data_dir,
                check_store,
                check_port,
                check_tunnel,
                check_discord,
                check_discord_alerts,
                check_frameio,
                check_review_field,
            ):
                checks.append(check(settings))
        if as_json:
            emit_json([{"check": n, "ok": ok, "detail": d} for n, ok, d in checks])
        else:
            for name, ok, detail in checks:
                mark = click.style(" ok ", fg="green") if ok else click.style("FIX ", fg="red")
                click.echo(f"[{mark}] {name}: {detail}")
        if not all(ok for _, ok, _ in checks):
            raise SystemExit(1)
