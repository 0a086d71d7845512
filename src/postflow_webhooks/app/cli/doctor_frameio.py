"""``doctor``'s Frame.io line: credentials present and real, sign-in works, account and workspace found."""

from __future__ import annotations

import asyncio
import re

from postflow_webhooks.adapters.frameio import (
    FrameioAdapter,
    FrameioConfig,
    FrameioConfigError,
    retry_policy,
)
from postflow_webhooks.adapters.frameio.errors import FrameioApiError, FrameioAuthError
from postflow_webhooks.app.composition import frameio_config
from postflow_webhooks.app.settings import Settings

Check = tuple[str, bool, str]
NAME = "frameio"
# The guide's config/frameio_config.json ships values like "votre_client_id" ("your_client_id").
PLACEHOLDER = re.compile(
    r"^(your[_ -]|votre[_ -]|<|x{4,}|changeme|todo|placeholder)", re.IGNORECASE
)


def _placeholders(config: FrameioConfig) -> list[str]:
    values = {
        "client_id": config.client_id,
        "client_secret": config.client_secret,
        "account_id": config.account_id,
        "workspace_id": config.workspace_id,
    }
    return [key for key, value in values.items() if PLACEHOLDER.match(value.strip())]


async def _reach(config: FrameioConfig) -> Check:
    adapter = FrameioAdapter(config, retrying=retry_policy(attempts=1))
    auth = adapter.auth
    assert auth is not None  # doctor checks our own credentials, never borrowed tokens
    try:
        try:
            await auth.access_token()
        except FrameioAuthError as exc:
            return NAME, False, f"sign-in refused: {exc}; check client_id and client_secret"
        except FrameioApiError as exc:
            return NAME, False, f"Adobe IMS cannot be reached ({exc}); check the network"
        summary = auth.summary()
        flow = summary.flow.value if summary else "?"
        path = f"/v4/accounts/{config.account_id}/workspaces/{config.workspace_id}/webhooks"
        try:
            answer = await adapter.client.request(
                "GET", path, params={"page_size": 1}, allow=(403, 404)
            )
        except FrameioAuthError as exc:
            return NAME, False, f"signed in, but Frame.io refuses the token: {exc}"
        except FrameioApiError as exc:
            return NAME, False, f"signed in ({flow}), but Frame.io's API failed: {exc}"
        if answer.status_code in (403, 404):
            return (
                NAME,
                False,
                f"signed in ({flow}), but account {config.account_id} or workspace "
                f"{config.workspace_id} was not found (HTTP {answer.status_code}); check "
                "account_id and workspace_id",
            )
        return (
            NAME,
            True,
            f"signed in ({flow}); account {config.account_id} and workspace "
            f"{config.workspace_id} found",
        )
    finally:
        await adapter.aclose()


def check_frameio(settings: Settings) -> Check:
    """The Frame.io API configuration, then sign-in and the account and workspace."""
    source = settings.config_dir / "frameio_config.json"
    try:
        config = frameio_config(settings)
    except FrameioConfigError as exc:
        return NAME, False, str(exc)
    if config is None:
        return (
            NAME,
            True,
            "API not configured: V4 deliveries carry ids only, so names and review decisions "
            f"are not looked up (put client_id and client_secret in {source})",
        )
    fake = _placeholders(config)
    if fake:
        return (
            NAME,
            False,
            f"{', '.join(fake)} in {source} (or POSTFLOW_FRAMEIO_*) still hold the guide's "
            "placeholder values; put in your Adobe Developer Console credential and Frame.io ids",
        )
    return asyncio.run(_reach(config))
