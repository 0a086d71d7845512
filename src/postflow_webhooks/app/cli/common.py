"""What every command shares: settings from flags, talking to a running receiver, output."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

import click
import httpx

from postflow_webhooks.app.settings import Settings, SettingsError, load_settings


def settings_for(flags: dict[str, Any]) -> Settings:
    """Settings from files, environment and these flags; a clear error when malformed."""
    try:
        return load_settings(os.environ, {k: v for k, v in flags.items() if v is not None})
    except SettingsError as exc:
        raise click.ClickException(f"configuration error: {exc}") from None


def get_json(base_url: str, path: str, params: dict[str, Any] | None = None) -> Any:
    """GET ``path`` from the receiver; a ``ClickException`` naming the fix when it is down."""
    try:
        answer = httpx.get(f"{base_url}{path}", params=params, timeout=10)
    except httpx.HTTPError as exc:
        raise click.ClickException(
            f"no receiver answers at {base_url} ({type(exc).__name__}). Start it with "
            "'postflow-webhooks serve' (or 'make run'), or point --url at it."
        ) from None
    try:
        data = answer.json()
    except ValueError:
        data = None
    if answer.status_code >= 400 and answer.status_code != 503:
        detail = data.get("detail") if isinstance(data, dict) else answer.text[:200]
        raise click.ClickException(f"{path} answered {answer.status_code}: {detail}")
    return data


def emit_json(data: Any) -> None:
    """Print ``data`` as indented JSON (for scripts)."""
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain aligned text table."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def pairs(rows: Sequence[tuple[str, Any]]) -> str:
    """``key: value`` lines, keys aligned."""
    width = max((len(k) for k, _ in rows), default=0)
    return "\n".join(f"{k.ljust(width)}  {'-' if v is None else v}" for k, v in rows)
