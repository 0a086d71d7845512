"""``doctor``: check everything the receiver depends on; each line is ok, a warning, or the fix.

``doctor`` only looks: it creates nothing (no data directory, no database).
A configuration that does not read is reported, and the other checks still
run, on the defaults and the command-line flags.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import click
import httpx

from postflow_webhooks.adapters.cloudflared import (
    CloudflaredConfig,
    TunnelSettingsError,
    check_cloudflared,
    require_complete,
)
from postflow_webhooks.adapters.sqlite import DATABASE_NAME
from postflow_webhooks.app.cli.common import emit_json
from postflow_webhooks.app.cli.doctor_discord import check_discord, check_discord_alerts
from postflow_webhooks.app.cli.doctor_frameio import (
    check_frameio,
    check_review_field,
    examples_hint,
)
from postflow_webhooks.app.cli.doctor_store import check_store
from postflow_webhooks.app.composition import frameio_config
from postflow_webhooks.app.datadir import DataDirectoryError, DataDirectoryLock
from postflow_webhooks.app.settings import (
    FRAMEIO_CONFIG,
    PARSERS,
    RECEIVER_CONFIG,
    Settings,
    SettingsError,
)

STORED_SECRET = "frameio_webhook_secret"


class Check(NamedTuple):
    """One line of the report: ok, a warning (still ok), or something to fix."""

    name: str
    ok: bool
    detail: str
    warning: bool = False


def check_settings(
    settings_for: Callable[[dict[str, Any]], Settings], flags: dict[str, Any]
) -> tuple[Check, Settings]:
    """The configuration files and variables read cleanly; else the defaults and flags, to go on."""
    try:
        settings = settings_for(flags)
    except (click.ClickException, SettingsError) as exc:
        message = exc.message if isinstance(exc, click.ClickException) else str(exc)
        given = {k: PARSERS[k](v) for k, v in flags.items() if v is not None and k in PARSERS}
        fallback = Settings(**given)
        return (
            Check(
                "configuration",
                False,
                f"{message}. The checks below use the defaults and the command-line flags",
            ),
            fallback,
        )
    files = [n for n in (FRAMEIO_CONFIG, RECEIVER_CONFIG) if (settings.config_dir / n).is_file()]
    if not files:
        return (
            Check(
                "configuration",
                True,
                f"no {FRAMEIO_CONFIG} or {RECEIVER_CONFIG} in {os.path.abspath(settings.config_dir)}: "
                f"defaults and environment only ({examples_hint()})",
            ),
            settings,
        )
    return (
        Check(
            "configuration",
            True,
            f"read {', '.join(files)} in {os.path.abspath(settings.config_dir)}",
        ),
        settings,
    )


def check_secret(settings: Settings) -> Check:
    """A signing secret is in force: configured, or stored by ``register`` and used with the API."""
    name = "signing secret"
    if settings.webhook_secret:
        return Check(name, True, "set; signatures are verified")
    stored = settings.data_dir / STORED_SECRET
    api = _api_configured(settings)
    if stored.is_file() and api:
        return Check(name, True, f"the secret 'register' stored in {stored} is in force")
    fix = (
        "Set POSTFLOW_WEBHOOK_SECRET (or webhook_secret in "
        f"{settings.config_dir / FRAMEIO_CONFIG}), or run 'postflow-webhooks register' with "
        "the Frame.io API configured, which stores Frame.io's secret"
    )
    if stored.is_file():
        fix = (
            f"{stored} holds a secret 'register' stored, but the receiver only uses it with the "
            "Frame.io API configured (client_id, client_secret, account_id, workspace_id): "
            "configure the API, or set POSTFLOW_WEBHOOK_SECRET to that secret"
        )
    if settings.tunnel == "off":
        return Check(
            name,
            True,
            "not set: signatures are not checked, which is fine while the receiver is local "
            f"only (tunnel off). Before opening a tunnel: {fix[0].lower()}{fix[1:]}",
            warning=True,
        )
    return Check(name, False, f"not set, and the tunnel is {settings.tunnel}. {fix}")


def _api_configured(settings: Settings) -> bool:
    try:
        return frameio_config(settings) is not None
    except Exception:  # a malformed API config is the frameio line's business
        return False


def check_data_dir(settings: Settings) -> Check:
    """The data directory is usable: written to for real, or its parent is; nothing is created."""
    name = "data directory"
    path = Path(os.path.abspath(settings.data_dir))
    fix = "choose another with --data-dir or POSTFLOW_DATA_DIR (or --state-dir)"
    if path.exists() and not path.is_dir():
        return Check(name, False, f"{path} is a file, not a directory; {fix}")
    if not path.exists():
        parent = next((p for p in path.parents if p.exists()), None)
        if parent is None or not parent.is_dir():
            return Check(name, False, f"{path} cannot be created; {fix}")
        problem = _write_probe(parent)
        if problem:
            return Check(name, False, f"{path} cannot be created in {parent} ({problem}); {fix}")
        return Check(
            name,
            True,
            f"{path} does not exist yet: serve creates it with a new, empty database "
            f"({parent} is writable). If you expected your files there, {fix}",
            warning=True,
        )
    problem = _write_probe(path)
    if problem:
        return Check(
            name, False, f"{path} is not writable ({problem}); fix its permissions or {fix}"
        )
    database = path / DATABASE_NAME
    held = _holder(settings)
    state = f"holds {DATABASE_NAME}" if database.is_file() else f"has no {DATABASE_NAME} yet"
    if held:
        state += f"; {held}"
    return Check(
        name, True, f"{path} is writable (a test file was written and removed) and {state}"
    )


def _write_probe(directory: Path) -> str | None:
    """Write and remove a small file in ``directory``; the reason it failed, or ``None``."""
    probe = directory / f".postflow-doctor-{uuid.uuid4().hex}"
    try:
        probe.write_bytes(b"doctor")
        probe.unlink()
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


def _holder(settings: Settings) -> str | None:
    """Who holds the data directory's lock, if anyone (checked without keeping it)."""
    lock = DataDirectoryLock(settings.data_dir)
    if not lock.path.is_file():
        return None  # no receiver ever ran here; nothing to create
    try:
        lock.acquire()
    except DataDirectoryError as exc:
        return exc.problem
    lock.release()
    return None


def check_port(settings: Settings) -> Check:
    """The receiver's port is free (or a receiver already answers on it)."""
    with socket.socket() as sock:
        try:
            sock.bind((settings.host, settings.port))
        except OSError:
            try:
                httpx.get(f"{settings.local_url}/health", timeout=2)
            except httpx.HTTPError:
                return Check(
                    "port",
                    False,
                    f"{settings.port} is taken by another program; choose another with "
                    f"--port or POSTFLOW_PORT, or find it with: lsof -i :{settings.port}",
                )
            return Check("port", True, f"{settings.port}: a receiver is already running there")
    return Check("port", True, f"{settings.port} on {settings.host} is free")


def check_tunnel(settings: Settings) -> Check:
    """The tunnel's settings work, and cloudflared is installed and recent enough."""
    if settings.tunnel != "off":
        try:
            config = CloudflaredConfig.from_settings(settings)
            if config is not None:
                require_complete(config)
        except TunnelSettingsError as exc:
            return Check("cloudflared", False, str(exc))
    try:
        found = check_cloudflared(settings.cloudflared)
    except Exception as exc:  # every error names its fix
        if settings.tunnel == "off":
            return Check(
                "cloudflared", True, f"not usable, but not needed while the tunnel is off ({exc})"
            )
        return Check("cloudflared", False, str(exc))
    mode = "" if settings.tunnel == "off" else f"; {settings.tunnel} tunnel settings complete"
    return Check("cloudflared", True, f"{found.version} at {found.executable}{mode}")


def register(group: click.Group, settings_for: Callable[[dict[str, Any]], Settings]) -> None:
    """Add ``doctor`` to the CLI group."""

    @group.command()
    @click.option("--host", default=None, help="Address the receiver listens on.")
    @click.option("--port", type=int, default=None, help="Port the receiver listens on.")
    @click.option(
        "--state-dir", type=click.Path(path_type=Path), default=None, help="The state directory."
    )
    @click.option(
        "--data-dir", type=click.Path(path_type=Path), default=None, help="The data directory."
    )
    @click.option(
        "--config-dir",
        type=click.Path(path_type=Path),
        default=None,
        help="Where frameio_config.json and receiver.json are.",
    )
    @click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
    def doctor(as_json: bool, **flags: Any) -> None:
        """Check configuration, secret, data directory, database, port, cloudflared, Discord, Frame.io."""
        first, settings = check_settings(settings_for, flags)
        checks = [first]
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
            checks.append(Check(*check(settings)))
        if as_json:
            emit_json(
                [
                    {"check": c.name, "ok": c.ok, "warning": c.warning, "detail": c.detail}
                    for c in checks
                ]
            )
        else:
            for c in checks:
                if not c.ok:
                    mark = click.style("FIX ", fg="red")
                elif c.warning:
                    mark = click.style("warn", fg="yellow")
                else:
                    mark = click.style(" ok ", fg="green")
                click.echo(f"[{mark}] {c.name}: {c.detail}")
        if not all(c.ok for c in checks):
            raise SystemExit(1)
