"""Talking to a running receiver from the CLI, with errors that say what to do."""

from __future__ import annotations

from typing import Any

import click
import httpx


def get_json(base_url: str, path: str, params: dict[str, Any] | None = None) -> Any:
    """GET ``path`` from the receiver; a ``ClickException`` naming the fix when it is down."""
    try:
        answer = httpx.get(f"{base_url}{path}", params=params, timeout=10)
    except httpx.HTTPError as exc:
        raise click.ClickException(
            f"no receiver answers at {base_url} ({type(exc).__name__}). Start it with "
            "'postflow-webhooks serve' (or 'make run'), or point --url at it."
        ) from None
    if answer.status_code >= 400 and answer.status_code != 503:
        detail = answer.json().get("detail") if _is_json(answer) else answer.text[:200]
        raise click.ClickException(f"{path} answered {answer.status_code}: {detail}")
    return answer.json()


def _is_json(answer: httpx.Response) -> bool:
    try:
        answer.json()
    except ValueError:
        return False
    return True
