"""What every command shares: settings from flags, talking to a running receiver, output."""

from __future__ import annotations

import json
import os
import sys
import unicodedata
from collections.abc import Sequence
from datetime import datetime
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


def get_json(
    base_url: str, path: str, params: dict[str, Any] | None = None, *, missing_ok: bool = False
) -> Any:
    """GET ``path`` from the receiver; a ``ClickException`` naming the fix when it is down.

    With ``missing_ok``, a 404 is ``None`` rather than an error.
    """
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
    if missing_ok and answer.status_code == 404:
        return None
    if answer.status_code >= 400 and answer.status_code != 503:
        detail = data.get("detail") if isinstance(data, dict) else answer.text[:200]
        raise click.ClickException(f"{path} answered {answer.status_code}: {detail}")
    return data


def emit_json(data: Any) -> None:
    """Print ``data`` as indented JSON (for scripts)."""
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def display_width(text: str) -> int:
    """How many terminal columns ``text`` takes: wide characters and emoji count two.

    East Asian wide and full-width characters take two columns; combining marks,
    zero-width joiners and variation selectors take none, except that VS16
    (U+FE0F) turns the narrow symbol before it into a two-column emoji ("⚙️").
    """
    width = 0
    previous = 0
    for char in text:
        if char == "\ufe0f":
            width += 1 if previous == 1 else 0
            previous = 2
            continue
        if unicodedata.combining(char) or unicodedata.category(char) in ("Mn", "Me", "Cf"):
            continue
        previous = 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1
        width += previous
    return width


def pad(text: str, width: int) -> str:
    """``text`` padded with spaces to ``width`` display columns."""
    return text + " " * max(width - display_width(text), 0)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain text table, aligned by display width (an emoji takes two columns)."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(display_width(row[i]) for row in cells) for i in range(len(headers))]
    lines = [
        "  ".join(pad(c, w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def short_time(text: str | None) -> str | None:
    """An ISO 8601 time as ``YYYY-MM-DD HH:MM:SS`` in this machine's time zone."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return text
    if moment.tzinfo is not None:
        moment = moment.astimezone()
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def progress(message: str) -> None:
    """A progress line on stderr: redrawn in place on a terminal, else only the final one.

    Output that is not a terminal (a pipe, a log file) gets no carriage returns.
    """
    if sys.stderr.isatty():
        click.echo(f"\r{message}", nl=False, err=True)


def progress_done(message: str) -> None:
    """End a progress line with its final state (printed once when not on a terminal)."""
    if sys.stderr.isatty():
        click.echo(f"\r{message}", err=True)
    else:
        click.echo(message, err=True)


def pairs(rows: Sequence[tuple[str, Any]]) -> str:
    """``key: value`` lines, keys aligned."""
    width = max((display_width(k) for k, _ in rows), default=0)
    return "\n".join(f"{pad(k, width)}  {'-' if v is None else v}" for k, v in rows)
