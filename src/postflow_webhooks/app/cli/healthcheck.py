"""``healthcheck``: ask a running receiver how it is; exit 0, 1 or 2 for Docker and systemd.

``--ready`` asks ``/readyz`` instead (can it accept and apply deliveries? the
question a restart can answer: 0 or 2), and ``--docker`` folds the statuses
into Docker's two (0 healthy or degraded, 1 otherwise: Docker reserves 2).
"""

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


def check_ready(base_url: str, timeout: float) -> tuple[int, str, Any]:
    """``/readyz``: 0 when ready, 2 when not ready or not answering; one line; the body."""
    try:
        answer = httpx.get(f"{base_url}/readyz", timeout=timeout)
        body = answer.json()
    except httpx.HTTPError as exc:
        return (
            UNREACHABLE,
            f"not ready: no receiver answers at {base_url} ({type(exc).__name__})",
            None,
        )
    except ValueError:
        return UNREACHABLE, f"not ready: {base_url}/readyz did not answer JSON", None
    if answer.status_code == 200:
        return 0, "ready", body
    reasons = [r.get("message", r.get("reason")) for r in body.get("reasons", [])]
    return UNREACHABLE, "not ready" + (": " + "; ".join(map(str, reasons)) if reasons else ""), body


def register(group: click.Group, settings_for: Callable[[dict[str, Any]], Settings]) -> None:
    """Add ``healthcheck`` to the CLI group."""

    @group.command()
    @click.option("--url", default=None, help="Receiver base URL (default: the configured one).")
    @click.option("--timeout", default=5.0, show_default=True, help="Seconds to wait for it.")
    @click.option("--quiet", is_flag=True, help="Print nothing; only the exit status speaks.")
    @click.option("--json", "as_json", is_flag=True, help="Print /health's JSON.")
    @click.option(
        "--ready",
        is_flag=True,
        help="Ask /readyz: 0 when deliveries can be accepted and applied, else 2 (for restarts).",
    )
    @click.option(
        "--docker",
        is_flag=True,
        help="Docker's exit statuses: 0 healthy or degraded, 1 otherwise (Docker reserves 2).",
    )
    def healthcheck(
        url: str | None, timeout: float, quiet: bool, as_json: bool, ready: bool, docker: bool
    ) -> None:
        """Exit 0 when healthy, 1 when degraded, 2 when unhealthy or not answering."""
        base = url or settings_for({}).local_url
        code, line, body = check_ready(base, timeout) if ready else check(base, timeout)
        if docker:
            code = 0 if code < UNREACHABLE else 1
        if as_json and body is not None:
            emit_json(body)
        elif not quiet:
            click.echo(line)
        raise SystemExit(code)
