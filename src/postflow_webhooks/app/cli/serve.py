"""``serve`` and ``tunnel``: running the receiver, or just a tunnel to one."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path
from typing import Any

import click

from postflow_webhooks.app.cli.common import settings_for


@click.command()
@click.option("--host", default=None, help="Address to listen on (default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port to listen on (default 8080).")
@click.option("--data-dir", type=click.Path(path_type=Path), default=None, help="Data directory.")
@click.option(
    "--store",
    type=click.Choice(["sqlite", "json", "postgres"]),
    default=None,
    help="json: also keep PostFlow's tracker file data/uploads_tracking.json in step; "
    "postgres: share one PostgreSQL database with other receivers (--database-url).",
)
@click.option(
    "--database-url",
    default=None,
    help="postgresql://USER[:PASSWORD]@HOST[:PORT]/DB for --store postgres "
    "(prefer POSTFLOW_DATABASE_URL: flags show in ps).",
)
@click.option("--config-dir", type=click.Path(path_type=Path), default=None, help="Config files.")
@click.option(
    "--tunnel", type=click.Choice(["off", "quick", "named"]), default=None, help="Public tunnel."
)
@click.option(
    "--allow-insecure-public",
    is_flag=True,
    default=None,
    help="DANGER: allow a public tunnel without a signing secret (experiments only).",
)
@click.option("--log-format", type=click.Choice(["text", "json"]), default=None, help="Log format.")
def serve(**flags: Any) -> None:
    """Run the receiver (and the tunnel, when enabled) until Ctrl-C or SIGTERM."""
    from postflow_webhooks.adapters.frameio import FrameioConfigError
    from postflow_webhooks.app.composition import create_app
    from postflow_webhooks.app.datadir import DataDirectoryError
    from postflow_webhooks.app.logs import configure_logging
    from postflow_webhooks.app.server import PortInUseError, bind_socket, connection_limits
    from postflow_webhooks.app.server import serve as run_server
    from postflow_webhooks.app.settings import SettingsError
    from postflow_webhooks.domain.endpoint import webhook_url
    from postflow_webhooks.domain.errors import DomainError

    settings = settings_for(flags)
    configure_logging(settings.log_format, settings.log_level)
    try:
        app = create_app(settings)
        runtime = app.state.runtime
        runtime.open()
        sock = bind_socket(settings.host, settings.port)
    except (DataDirectoryError, DomainError, FrameioConfigError, PortInUseError) as exc:
        raise click.ClickException(str(exc)) from None
    except SettingsError as exc:
        raise click.ClickException(f"configuration error: {exc}") from None
    click.echo(f"Receiver:     {settings.local_url}", err=True)
    click.echo(f"Store:        {runtime.store_label}", err=True)
    click.echo(f"Webhook URL:  {webhook_url(settings.local_url)} (local)", err=True)
    if settings.tunnel != "off":
        click.echo(
            f"Tunnel:       {settings.tunnel}; the public URL is logged once ready", err=True
        )
    verified = "verified" if runtime.secrets.required() else "NOT verified (no secret set)"
    if runtime.secrets.locked:
        verified = "required; no secret yet: deliveries are refused until the webhook is registered"
    click.echo(f"Signatures:   {verified}", err=True)
    run_server(app, sock, connection_limits(settings))
    sys.exit(0)


@click.command()
@click.option("--port", type=int, default=None, help="The receiver's port (default 8080).")
@click.option("--mode", type=click.Choice(["quick", "named"]), default="quick", show_default=True)
@click.option(
    "--allow-insecure-public",
    is_flag=True,
    default=None,
    help="DANGER: open the tunnel although no signing secret is configured.",
)
def tunnel(port: int | None, mode: str, allow_insecure_public: bool | None) -> None:
    """Start a Cloudflare tunnel to the webhook port, print its URLs, run until Ctrl-C or SIGTERM."""
    from postflow_webhooks.app.composition import build_tunnel
    from postflow_webhooks.app.logs import configure_logging
    from postflow_webhooks.domain.endpoint import webhook_url
    from postflow_webhooks.domain.errors import TunnelError

    flags = {"port": port, "tunnel": mode, "allow_insecure_public": allow_insecure_public}
    settings = settings_for(flags)
    configure_logging(settings.log_format, settings.log_level)
    try:
        supervised = build_tunnel(settings, secret_set=settings.signature_required)
    except TunnelError as exc:
        raise click.ClickException(str(exc)) from None
    assert supervised is not None

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        try:
            await supervised.start()
            public = supervised.info().public_url
            click.echo(f"Public URL:   {public}")
            click.echo(f"Webhook URL:  {webhook_url(public) if public else None}")
            sys.stdout.flush()
            click.echo(f"Forwarding to {settings.local_url}; Ctrl-C to stop.", err=True)
            await stop.wait()
        finally:
            loop.remove_signal_handler(signal.SIGTERM)
            await supervised.stop()

    try:
        asyncio.run(run())
    except TunnelError as exc:
        raise click.ClickException(str(exc)) from None
    except KeyboardInterrupt:
        pass
    click.echo("tunnel stopped", err=True)
