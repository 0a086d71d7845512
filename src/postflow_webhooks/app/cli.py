"""The ``postflow-webhooks`` command line."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

from postflow_webhooks.app.settings import Settings, SettingsError, load_settings


def _settings(flags: dict[str, Any]) -> Settings:
    try:
        return load_settings(os.environ, flags)
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
    "--log-format", type=click.Choice(["text", "json"]), default=None, help="Log line format."
)
def serve(**flags: Any) -> None:
    """Run the receiver until Ctrl-C or SIGTERM."""
    from postflow_webhooks.app.composition import create_app
    from postflow_webhooks.app.logs import configure_logging
    from postflow_webhooks.app.preflight import PreflightError, preflight
    from postflow_webhooks.app.server import PortInUseError
    from postflow_webhooks.app.server import serve as run_server

    settings = _settings(flags)
    configure_logging(settings.log_format, settings.log_level)
    try:
        preflight(settings)
    except PreflightError as exc:
        raise click.ClickException(str(exc)) from None
    app = create_app(settings)
    click.echo(f"Receiver:     {settings.local_url}", err=True)
    click.echo(f"Webhook URL:  {settings.local_url}/frameio-webhook", err=True)
    click.echo(
        f"Signatures:   {'verified' if settings.signature_required else 'NOT verified (no secret)'}",
        err=True,
    )
    try:
        run_server(app, settings.host, settings.port)
    except PortInUseError as exc:
        raise click.ClickException(str(exc)) from None
    sys.exit(0)


if __name__ == "__main__":
    main()
