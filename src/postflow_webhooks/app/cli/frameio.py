"""``auth``, ``register`` and ``unregister``: the Frame.io side of the receiver."""

from __future__ import annotations

import asyncio
import webbrowser
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import click

from postflow_webhooks.adapters.frameio import (
    FrameioAdapter,
    FrameioConfigError,
    TokenSummary,
    retry_policy,
)
from postflow_webhooks.adapters.frameio.errors import FrameioError
from postflow_webhooks.app.cli.common import emit_json, pairs
from postflow_webhooks.app.cli.shared_secret import shared_database, write_shared_secret
from postflow_webhooks.app.composition import frameio_config
from postflow_webhooks.app.settings import Settings

T = TypeVar("T")


def _adapter(settings: Settings) -> FrameioAdapter:
    try:
        config = frameio_config(settings)
    except FrameioConfigError as exc:
        raise click.ClickException(str(exc)) from None
    if config is None:
        raise click.ClickException(
            f"no Frame.io API credentials: put client_id, client_secret, account_id and "
            f"workspace_id in {settings.config_dir / 'frameio_config.json'} "
            "(or POSTFLOW_FRAMEIO_CLIENT_ID, ...)"
        )
    return FrameioAdapter(config, retrying=retry_policy())


def _run(settings: Settings, job: Callable[[FrameioAdapter], Awaitable[T]]) -> T:
    async def main() -> T:
        adapter = _adapter(settings)
        try:
            return await job(adapter)
        finally:
            await adapter.aclose()

    try:
        return asyncio.run(main())
    except FrameioError as exc:
        raise click.ClickException(f"Frame.io: {exc}") from None


def register_commands(
    group: click.Group, settings_for: Callable[[dict[str, Any]], Settings]
) -> None:
    """Add the Frame.io commands to the CLI group."""

    @group.command()
    @click.option("--no-browser", is_flag=True, help="Print the sign-in URL instead of opening it.")
    @click.option(
        "--timeout", default=300.0, show_default=True, help="Seconds to wait for sign-in."
    )
    def auth(no_browser: bool, timeout: float) -> None:
        """Sign in to Frame.io (Adobe IMS) and store the tokens (owner-only file)."""
        settings = settings_for({})

        async def open_url(url: str) -> None:
            click.echo(f"Sign in at:\n  {url}", err=True)
            if not no_browser:
                webbrowser.open(url)

        async def sign_in(adapter: FrameioAdapter) -> TokenSummary:
            assert adapter.auth is not None  # the CLI always signs in with our own credentials
            return await adapter.auth.authorize_user(open_url, timeout=timeout)

        summary = _run(settings, sign_in)
        click.echo(
            pairs(
                [
                    ("stored in", summary.path),
                    ("flow", summary.flow.value),
                    ("expires at", summary.expires_at.isoformat()),
                    ("refresh token", "yes" if summary.has_refresh_token else "no"),
                ]
            )
        )

    @group.command()
    @click.argument("public_url")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
    def register(public_url: str, as_json: bool) -> None:
        """Create (or update) our Frame.io webhook to point at PUBLIC_URL/frameio-webhook."""
        settings = settings_for({})
        registration = _run(settings, lambda a: a.webhooks.register(public_url))
        info = registration.webhook
        data = {
            "webhook_id": info.id,
            "url": info.url,
            "created": registration.created,
            "secret_stored_in": str(_secret_path(settings)),
        }
        database_url = shared_database(settings)
        if database_url is not None and registration.secret:
            data["secret_shared_in"] = write_shared_secret(database_url, registration.secret)
        if as_json:
            emit_json(data)
            return
        click.echo(pairs(list(data.items())))
        if "secret_shared_in" in data:
            click.echo(
                "Every receiver on that database verifies deliveries with it within about 2 seconds."
            )
            return
        click.echo("A running receiver verifies deliveries with the stored secret within a second.")

    @group.command()
    def unregister() -> None:
        """Delete our Frame.io webhook and its stored secret."""
        settings = settings_for({})
        removed = _run(settings, lambda a: a.webhooks.unregister())
        database_url = shared_database(settings)
        if database_url is not None:
            write_shared_secret(database_url, None)
        click.echo("webhook deleted" if removed else "Frame.io had no webhook of ours")


def _secret_path(settings: Settings) -> Any:
    config = frameio_config(settings)
    return config.webhook_secret_path if config else None
