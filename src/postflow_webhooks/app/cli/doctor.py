"""``doctor``: check everything the receiver depends on; each line is ok or the fix."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from typing import Any

import click
import httpx

from postflow_webhooks.adapters.cloudflared import check_cloudflared
from postflow_webhooks.adapters.discord import redact
from postflow_webhooks.app.cli.common import emit_json
from postflow_webhooks.app.cli.doctor_frameio import check_frameio
from postflow_webhooks.app.settings import Settings, SettingsError

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
    """The Discord webhook answers (a GET shows the webhook without posting anything)."""
    return _discord("discord", settings.discord_webhook_url, "POSTFLOW_DISCORD_WEBHOOK_URL")


def check_discord_alerts(settings: Settings) -> Check:
    """The Discord webhook for alerts answers, when alerts have a channel of their own."""
    url = settings.discord_alerts_url
    if not url or url == settings.discord_webhook_url:
        if not settings.discord_webhook_url:
            return ("discord alerts", True, "not configured: no alert is sent")
        return ("discord alerts", True, "no channel of their own: alerts go to the status channel")
    return _discord("discord alerts", url, "POSTFLOW_DISCORD_ALERTS_URL")


def _discord(name: str, url: str | None, variable: str) -> Check:
    if not url:
        return (name, True, "not configured: no notifications are sent")
    label = redact(url)
    try:
        answer = httpx.get(url, timeout=5)
    except httpx.HTTPError as exc:
        return (
            name,
            False,
            f"{label} did not answer ({type(exc).__name__}); check the network",
        )
    if answer.status_code == 200:
        return (name, True, f"{label} answers")
    return (
        name,
        False,
        f"{label} answered {answer.status_code}: the webhook was deleted or its token is wrong; "
        f"create a new one in Discord and set {variable}",
    )


def register(group: click.Group, settings_for: Callable[[dict[str, Any]], Settings]) -> None:
    """Add ``doctor`` to the CLI group."""

    @group.command()
    @click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
    def doctor(as_json: bool) -> None:
        """Check configuration, secret, data directory, port, cloudflared, Discord, Frame.io."""
        first, settings = check_settings(settings_for)
        checks = [first]
        if settings is not None:
            for check in (
                check_secret,
                check_data_dir,
                check_port,
                check_tunnel,
                check_discord,
                check_discord_alerts,
                check_frameio,
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
