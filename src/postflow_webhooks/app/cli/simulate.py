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
from collections import Counter
from collections.abc import Callable
from typing import Any

import click
import httpx

from postflow_webhooks.app.cli.common import (
    emit_json,
    get_json,
    progress,
    progress_done,
    table,
)
from postflow_webhooks.app.cli.posting import advice, post, refusal, signing_secret, summary
from postflow_webhooks.app.settings import Settings


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
        "--dialect",
        type=click.Choice(["postflow", "v4"]),
        default="postflow",
        show_default=True,
        help="postflow: PostFlow's own payloads; v4: Frame.io V4's IDs-only deliveries.",
    )
    @click.option("--prefix", default="sim", show_default=True, help="File id prefix.")
    @click.option(
        "--timeout",
        default=30.0,
        show_default=True,
        help="Seconds to wait for the receiver to apply these deliveries.",
    )
    @click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
    def simulate(
        url: str | None, files: int, dialect: str, prefix: str, timeout: float, as_json: bool
    ) -> None:
        """Send a signed, realistic sequence for some files and show where they end up."""
        settings: Settings = settings_for({})
        base = (url or settings.local_url).rstrip("/")
        secret, signed_with = signing_secret(settings)
        run = uuid.uuid4().hex[:6]
        make: Callable[[str, str], list[dict[str, Any]]] = (
            postflow_sequence if dialect == "postflow" else v4_sequence
        )
        plan = [(f"{prefix}-{run}-{i}", f"{prefix}_{i:03d}.mov") for i in range(files)]
        bodies = [body for file_id, name in plan for body in make(file_id, name)]
        answers: Counter[int] = Counter()
        refused: Counter[str] = Counter()
        with httpx.Client(timeout=10) as http:
            for index, body in enumerate(bodies, 1):
                answer = post(http, base, json.dumps(body).encode(), secret)
                answers[answer.status_code] += 1
                if answer.status_code != 202:
                    refused[refusal(answer)] += 1
                if index % 50 == 0 or index == len(bodies):
                    progress(f"sent {index}/{len(bodies)}")
        progress_done(f"sent {len(bodies)}/{len(bodies)}")
        if refused:
            tip = advice(refused, settings, signed_with)
            raise click.ClickException(
                f"the receiver at {base} refused {sum(refused.values())} of {len(bodies)} "
                f"deliveries: {summary(refused)}" + (f". {tip[:1].upper()}{tip[1:]}" if tip else "")
            )
        results = _wait_for_files(base, [file_id for file_id, _ in plan], timeout)
        if as_json:
            emit_json({"answers": dict(answers), "uploads": results})
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


def _wait_for_files(base: str, file_ids: list[str], timeout: float) -> list[dict[str, Any]]:
    """Each file once the receiver has applied every delivery of it; the reason if it cannot.

    Only these files are waited for (each one tracked, with no ``backlog`` left in
    ``/uploads/{id}``), not the receiver's whole backlog.
    """
    deadline = time.monotonic() + timeout
    told: set[str] = set()
    said_waiting = False
    while True:
        found = [get_json(base, f"/uploads/{file_id}", missing_ok=True) for file_id in file_ids]
        left = sum(1 for f in found if not _settled(f))
        if left == 0:
            if said_waiting:
                progress_done("all applied")
            return found
        if not said_waiting:
            click.echo(
                f"waiting for the receiver to apply the deliveries of {left} file(s)...", err=True
            )
            said_waiting = True
        for reason in _deferrals(found):
            if reason not in told:
                told.add(reason)
                click.echo(f"still waiting: {reason}", err=True)
        progress(f"{left} file(s) left")
        if time.monotonic() >= deadline:
            raise click.ClickException(_stuck(base, left, found, timeout))
        time.sleep(0.1)


def _settled(found: Any) -> bool:
    """True when the file is tracked and none of its deliveries waits to be applied."""
    if not isinstance(found, dict) or not found.get("tracked", True):
        return False  # not tracked yet: its first deliveries are still to be applied
    return not found.get("backlog")


def _deferrals(found: list[Any]) -> list[str]:
    """Why some of these files' deliveries wait (Frame.io's API failing, say)."""
    reasons = []
    for item in found:
        for pending in (item or {}).get("pending_enrichment", []) if isinstance(item, dict) else []:
            reasons.append(
                f"a delivery of {pending.get('file_id')} waits for Frame.io, retried with "
                f"backoff: {pending.get('last_error')}"
            )
    return reasons


def _stuck(base: str, left: int, found: list[Any], timeout: float) -> str:
    """The timeout's message: what is left, and every reason the receiver gives."""
    reasons = _deferrals(found)
    health = get_json(base, "/health")
    if isinstance(health, dict):
        reasons += [*health.get("problems", []), *health.get("warnings", [])]
    why = "; ".join(dict.fromkeys(reasons)) or "it gave no reason: see its log"
    return (
        f"the receiver at {base} had not applied the deliveries of {left} file(s) after "
        f"{timeout:g} s "
        f"(--timeout). Why: {why}"
    )
