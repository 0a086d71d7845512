"""The ``postflow-webhooks`` command line: serve, tunnel, simulate, inspect, diagnose."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import Any

import click

from postflow_webhooks.app import cli_doctor, cli_frameio, cli_inspect, cli_simulate
from postflow_webhooks.app.settings import Settings, SettingsError, load_settings


def settings_for(flags: dict[str, Any]) -> Settings:
    """Settings from files, environment and these flags; a clear error when malformed."""
    try:
        return load_settings(os.environ, {k: v for k, v in flags.items() if v is not None})
    except SettingsError as exc:
        raise click.ClickException(f"configuration error: {exc}") from None


@click.group()
@click.version_option(package_name="postflow-webhooks")
def main() -> None:
    """Receive Frame.io webhooks for PostFlow: serve, inspect, simulate, diagnose."""


@main.command()
@click.option("--host", default=None, help="Address to listen on (default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port to listen on (default 8080).")
@click.option("--data-dir", type=click.Path(path_type=Path), default=None, help="Data directory.")
@click.option("--store", type=click.Choice(["sqlite", "json"]), default=None, help="Tracker store.")
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
    from postflow_webhooks.app.logs import configure_logging
    from postflow_webhooks.app.preflight import PreflightError, preflight
    from postflow_webhooks.app.server import PortInUseError
    from postflow_webhooks.app.server import serve as run_server
    from postflow_webhooks.domain.errors import DomainError

    settings = settings_for(flags)
    configure_logging(settings.log_format, settings.log_level)
    try:
        preflight(settings)
        app = create_app(settings)
    except (PreflightError, DomainError, FrameioConfigError) as exc:
        raise click.ClickException(str(exc)) from None
    runtime = app.state.runtime
    click.echo(f"Receiver:     {settings.local_url}", err=True)
    click.echo(f"Webhook URL:  {settings.local_url}/frameio-webhook (local)", err=True)
    if settings.tunnel != "off":
        click.echo(
            f"Tunnel:       {settings.tunnel}; the public URL is logged once ready", err=True
        )
    verified = "verified" if runtime.secrets else "NOT verified (no secret set)"
    click.echo(f"Signatures:   {verified}", err=True)
    try:
        run_server(app, settings.host, settings.port)
    except PortInUseError as exc:
        raise click.ClickException(str(exc)) from None
    sys.exit(0)


@main.command()
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
    from postflow_webhooks.adapters.cloudflared import (
        CloudflaredConfig,
        CloudflaredTunnel,
        require_public_exposure_allowed,
    )
    from postflow_webhooks.app.logs import configure_logging
    from postflow_webhooks.domain.errors import TunnelError

    flags = {"port": port, "tunnel": mode, "allow_insecure_public": allow_insecure_public}
    settings = settings_for(flags)
    configure_logging(settings.log_format, settings.log_level)
    try:
        require_public_exposure_allowed(settings.signature_required, settings.allow_insecure_public)
    except TunnelError as exc:
        raise click.ClickException(str(exc)) from None
    log_file = settings.log_dir / "webhook_tunnel.log"
    config = CloudflaredConfig.from_settings(settings, log_file=log_file)
    assert config is not None

    async def run() -> None:
        supervised = CloudflaredTunnel(config)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        try:
            await supervised.start()
            public = supervised.info().public_url
            click.echo(f"Public URL:   {public}")
            click.echo(f"Webhook URL:  {public}/frameio-webhook")
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


cli_inspect.register(main, settings_for)
cli_simulate.register(main, settings_for)
cli_doctor.register(main, settings_for)
cli_frameio.register_commands(main, settings_for)


if __name__ == "__main__":
    main()
