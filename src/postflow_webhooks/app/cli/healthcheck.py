"""``healthcheck``: ask a running receiver how it is; exit 0, 1 or 2 for Docker and systemd."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click
import httpx

from postflow_webhooks.app.cli.common import emit_json
from postflow_webhooks.app.settings import Settings
from postflow_webhooks.domain.health import Verdict

UNREACHABLE = Verdict.UNHEALTHY.exit_code


def check(base_url: str, timeout: float) -> tuple[int, str, Any]:
    """The exit status, one line saying why, and ``/health``'s body (``None`` if no answer)."""
    try:
        answer = httpx.get(f"{base_url}/health", timeout=timeout)
        body = answer.json()
    except httpx.HTTPError as exc:
        return (
            UNREACHABLE,
            f"unhealthy: no receiver answers at {base_url} ({type(exc).__name__})",
            None,
        )
    except ValueError:
        return UNREACHABLE, f"unhealthy: {base_url}/health did not answer JSON", None
    status = body.get("status") if isinstance(body, dict) else None
    try:
        verdict = Verdict(status)
    except ValueError:
        return UNREACHABLE, f"unhealthy: {base_url}/health answered {answer.status_code}", body
    reasons = [*body.get("problems", []), *body.get("warnings", [])]
    line = verdict.value + (": " + "; ".join(reasons) if reasons else "")
    return verdict.exit_code, line, body


def register(group: click.Group, settings_for: Callable[[dict[str, Any]], Settings]) -> None:
    """Add ``healthcheck`` to the CLI group."""

    @group.command()
    @click.option("--url", default=None, help="Receiver base URL (default: the configured one).")
    @click.option("--timeout", default=5.0, show_default=True, help="Seconds to wait for it.")
    @click.option("--quiet", is_flag=True, help="Print nothing; only the exit status speaks.")
    @click.option("--json", "as_json", is_flag=True, help="Print /health's JSON.")
    def healthcheck(url: str | None, timeout: float, quiet: bool, as_json: bool) -> None:
        """Exit 0 when healthy, 1 when degraded, 2 when unhealthy or not answering."""
        base = url or settings_for({}).local_url
        code, line, body = check(base, timeout)
        if as_json and body is not None:
            emit_json(body)
        elif not quiet:
            click.echo(line)
        raise SystemExit(code)
