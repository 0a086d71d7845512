"""``simulate``: send a realistic, signed Frame.io sequence to a running receiver.

The seed's ``test_webhook_integration.py`` made useful: for each file it sends
what Frame.io would (upload completed, ready, needs review, approved, a
comment), signed with the configured secret, then prints the statuses the
receiver ends with.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import click
import httpx

from postflow_webhooks.adapters.http.signature import sign
from postflow_webhooks.app.cli.common import emit_json, get_json, table
from postflow_webhooks.app.settings import Settings
from postflow_webhooks.domain.endpoint import webhook_url


def postflow_sequence(file_id: str, name: str) -> list[dict[str, Any]]:
    """The PostFlow dialect's life of one file."""
    resource = {"id": file_id, "name": name}
    return [
        {"event_type": "file.upload.completed", "resource": {**resource, "status": "processing"}},
        {
            "event_type": "file.ready",
            "resource": {**resource, "view_url": f"https://next.frame.io/view/{file_id}"},
        },
        {
            "event_type": "review.status.changed",
            "resource": {**resource, "review_status": "needs_review"},
        },
        {
            "event_type": "review.status.changed",
            "resource": {**resource, "review_status": "approved"},
        },
        {
            "event_type": "comment.created",
            "resource": {
                **resource,
                "comment_id": uuid.uuid4().hex,
                "text": "Looks great",
                "author": "simulate",
            },
        },
    ]


def v4_sequence(file_id: str, name: str) -> list[dict[str, Any]]:
    """Frame.io V4's life of one file (IDs only: names and reviews need the API)."""
    ids = {
        "account": {"id": "simulated-account"},
        "workspace": {"id": "simulated-workspace"},
        "project": {"id": "simulated-project"},
        "user": {"id": "simulated-user"},
    }
    return [
        {**ids, "type": kind, "resource": {"id": file_id, "type": "file"}}
        for kind in (
            "file.created",
            "file.upload.completed",
            "file.ready",
            "metadata.value.updated",
        )
    ]


def register(group: click.Group, settings_for: Any) -> None:
    """Add ``simulate`` to the CLI group."""

    @group.command()
    @click.option("--url", default=None, help="Receiver base URL (default: the configured one).")
    @click.option("--files", default=1, show_default=True, help="How many files to simulate.")
    @click.option(
        "--dialect", type=click.Choice(["postflow", "v4"]), default="postflow", show_default=True
    )
    @click.option("--prefix", default="sim", show_default=True, help="File id prefix.")
    @click.option(
        "--timeout", default=30.0, show_default=True, help="Seconds to wait for processing."
    )
    @click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
    def simulate(
        url: str | None, files: int, dialect: str, prefix: str, timeout: float, as_json: bool
    ) -> None:
        """Send a signed, realistic sequence for some files and show where they end up."""
        settings: Settings = settings_for({})
        base = url or settings.local_url
        run = uuid.uuid4().hex[:6]
        make: Callable[[str, str], list[dict[str, Any]]] = (
            postflow_sequence if dialect == "postflow" else v4_sequence
        )
        plan = [(f"{prefix}-{run}-{i}", f"{prefix}_{i:03d}.mov") for i in range(files)]
        bodies = [body for file_id, name in plan for body in make(file_id, name)]
        answers: dict[int, int] = {}
        with httpx.Client(timeout=10) as http:
            for index, body in enumerate(bodies, 1):
                code = _send(http, base, body, settings.webhook_secret)
                answers[code] = answers.get(code, 0) + 1
                if index % 50 == 0 or index == len(bodies):
                    click.echo(f"\rsent {index}/{len(bodies)}", nl=False, err=True)
        click.echo(err=True)
        if answers.get(202, 0) != len(bodies):
            raise click.ClickException(f"not every delivery was accepted: {answers}")
        _wait_for_backlog(base, timeout)
        results = [get_json(base, f"/uploads/{file_id}") for file_id, _ in plan]
        if as_json:
            emit_json({"answers": answers, "uploads": results})
            return
        click.echo(f"sent {len(bodies)} deliveries ({dialect} dialect), all accepted")
        click.echo(
            table(
                ["file id", "name", "status", "changes"],
                [
                    (r["file_id"], r.get("name"), r.get("status_label"), len(r.get("history", [])))
                    for r in results
                ],
            )
        )


def _send(http: httpx.Client, base: str, body: dict[str, Any], secret: str | None) -> int:
    raw = json.dumps(body).encode()
    headers = {"Content-Type": "application/json", "User-Agent": "postflow-webhooks simulate"}
    if secret:
        stamp = str(int(time.time()))
        headers["X-Frameio-Request-Timestamp"] = stamp
        headers["X-Frameio-Signature"] = sign(secret, stamp, raw)
    try:
        return http.post(webhook_url(base), content=raw, headers=headers).status_code
    except httpx.HTTPError as exc:
        raise click.ClickException(
            f"no receiver answers at {base} ({type(exc).__name__}); start it with 'postflow-webhooks serve'"
        ) from None


def _wait_for_backlog(base: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if get_json(base, "/health").get("backlog") == 0:
            return
        time.sleep(0.1)
    raise click.ClickException(f"the receiver still had a backlog after {timeout} s")
