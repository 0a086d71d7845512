"""``serve`` and ``tunnel``: running the receiver, or just a tunnel to one."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from postflow_webhooks.app.cli.common import settings_for
from postflow_webhooks.app.settings import Settings

CLI_LOGGER = "postflow_webhooks.cli"


@click.command()
@click.option("--host", default=None, help="Address to listen on (default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port to listen on (default 8080).")
@click.option(
    "--state-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="One directory for data/, logs/ and config/ (POSTFLOW_STATE_DIR).",
)
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Data directory: the database and the lock (default ./data, or STATE_DIR/data).",
)
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
@click.option(
    "--config-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Where frameio_config.json and receiver.json are (default ./config).",
)
@click.option(
    "--tunnel",
    type=click.Choice(["off", "quick", "named"]),
    default=None,
    help="Public tunnel: off, quick (random trycloudflare.com URL) or named (your hostname).",
)
@click.option(
    "--allow-insecure-public",
    is_flag=True,
    default=None,
    help="DANGER: allow a public tunnel without a signing secret (experiments only).",
)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default=None,
    help="text, or json: one JSON object per line, start-up lines included.",
)
def serve(**flags: Any) -> None:
    """Run the receiver (and the tunnel, when enabled) until Ctrl-C or SIGTERM."""
    from postflow_webhooks.adapters.frameio import FrameioConfigError
    from postflow_webhooks.adapters.sqlite import DATABASE_NAME
    from postflow_webhooks.app.composition import create_app
    from postflow_webhooks.app.datadir import DataDirectoryError
    from postflow_webhooks.app.logs import configure_logging
    from postflow_webhooks.app.server import PortInUseError, bind_socket, connection_limits
    from postflow_webhooks.app.server import serve as run_server
    from postflow_webhooks.app.settings import SettingsError
    from postflow_webhooks.domain.errors import DomainError

    json_logs = _json_logs(flags)
    try:
        settings = settings_for(flags)
    except click.ClickException as exc:
        _fail(exc.message, json_logs)
    configure_logging(settings.log_format, settings.log_level)
    json_logs = settings.log_format == "json"
    shared = settings.store not in ("sqlite", "json")  # PostgreSQL: no database file here
    existed = shared or (settings.data_dir / DATABASE_NAME).exists()
    try:
        app = create_app(settings)
        runtime = app.state.runtime
        runtime.open()
        sock = bind_socket(settings.host, settings.port)
    except (DataDirectoryError, DomainError, FrameioConfigError, PortInUseError) as exc:
        _fail(str(exc), json_logs)
    except SettingsError as exc:
        _fail(f"configuration error: {exc}", json_logs)
    _announce(settings, runtime, new_database=not existed)
    run_server(app, sock, connection_limits(settings))
    sys.exit(0)


def _json_logs(flags: dict[str, Any]) -> bool:
    """Whether errors before the settings are read must be JSON too."""
    chosen = flags.get("log_format") or os.environ.get("POSTFLOW_LOG_FORMAT", "")
    return chosen.strip().lower() == "json"


def _fail(message: str, json_logs: bool) -> NoReturn:
    """Stop with exit status 1: ``Error: ...`` on stderr, or one JSON line with --log-format json."""
    if not json_logs:
        raise click.ClickException(message)
    from postflow_webhooks.app.logs import configure_logging

    configure_logging("json")
    logging.getLogger(CLI_LOGGER).error(message, extra={"event": "start_refused"})
    sys.exit(1)


def _announce(settings: Settings, runtime: Any, *, new_database: bool) -> None:
    """Say where the receiver listens, where its data is, and whether signatures are checked.

    Plain lines on stderr, or (``--log-format json``) one JSON log line with the same fields.
    """
    from postflow_webhooks.domain.endpoint import webhook_url

    data = Path(os.path.abspath(settings.data_dir))
    signatures = "verified" if runtime.secrets.required() else "NOT verified (no secret set)"
    if runtime.secrets.locked:
        signatures = (
            "required; no secret yet: deliveries are refused until the webhook is registered"
        )
    fields: dict[str, Any] = {
        "event": "serving",
        "local_url": settings.local_url,
        "webhook_url": webhook_url(settings.local_url),
        "data_dir": str(data),
        "new_database": new_database,
        "store": runtime.store_label,
        "tunnel": settings.tunnel,
        "signatures": signatures,
    }
    if settings.log_format == "json":
        logging.getLogger(CLI_LOGGER).info(
            "serving on %s (data: %s)", settings.local_url, data, extra=fields
        )
        return
    fresh = f" (new, empty: there was no {data / 'postflow.sqlite3'})" if new_database else ""
    click.echo(f"Receiver:     {settings.local_url}", err=True)
    click.echo(f"Data:         {data}{fresh}", err=True)
    if settings.store not in ("sqlite", "json"):  # the Data line names a SQLite database
        click.echo(f"Store:        {runtime.store_label}", err=True)
    click.echo(f"Webhook URL:  {fields['webhook_url']} (local)", err=True)
    if settings.tunnel != "off":
        click.echo(
            f"Tunnel:       {settings.tunnel}; the public URL is logged once ready", err=True
        )
    click.echo(f"Signatures:   {signatures}", err=True)


@click.command()
@click.option("--port", type=int, default=None, help="The receiver's port (default 8080).")
@click.option(
    "--mode",
    type=click.Choice(["quick", "named"]),
    default="quick",
    show_default=True,
    help="quick: a random trycloudflare.com URL, no account; named: your hostname, "
    "with TUNNEL_TOKEN and POSTFLOW_TUNNEL_HOSTNAME.",
)
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
        with contextlib.suppress(NotImplementedError):  # Windows: Ctrl-C only
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
            with contextlib.suppress(NotImplementedError):
                loop.remove_signal_handler(signal.SIGTERM)
            await supervised.stop()

    try:
        asyncio.run(run())
    except TunnelError as exc:
        raise click.ClickException(str(exc)) from None
    except KeyboardInterrupt:
        pass
    click.echo("tunnel stopped", err=True)
