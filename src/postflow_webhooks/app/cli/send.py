"""``send FILE.json``: post any payload to a running receiver, signed, and print the answer.

The user's guide tests the receiver with ``curl -X POST ... -d '{...}'``;
``send`` posts the same JSON (from a file, or ``-`` for standard input)
signed with the configured secret, as Frame.io would, and prints the
receiver's answer. The bytes are sent exactly as they are in the file, so a
file that is not JSON shows the receiver's ``400`` answer.
"""

from __future__ import annotations

import json
from typing import Any

import click
import httpx

from postflow_webhooks.app.cli.common import emit_json
from postflow_webhooks.app.cli.posting import (
    advice,
    answer_text,
    post,
    refusal,
    signing_secret,
)
from postflow_webhooks.app.settings import Settings


def register(group: click.Group, settings_for: Any) -> None:
    """Add ``send`` to the CLI group."""

    @group.command()
    @click.argument("payloads", nargs=-1, required=True, type=click.File("rb"))
    @click.option("--url", default=None, help="Receiver base URL (default: the configured one).")
    @click.option(
        "--unsigned", is_flag=True, help="Send without a signature, even with a secret set."
    )
    @click.option("--json", "as_json", is_flag=True, help="Print the answers as JSON.")
    def send(payloads: tuple[Any, ...], url: str | None, unsigned: bool, as_json: bool) -> None:
        """Post each JSON file (- for standard input), signed, and print the receiver's answer."""
        settings: Settings = settings_for({})
        base = (url or settings.local_url).rstrip("/")
        secret, signed_with = signing_secret(settings)
        if unsigned:
            secret, signed_with = None, "no signature (--unsigned)"
        results, refused = [], []
        with httpx.Client(timeout=10) as http:
            for handle in payloads:
                raw = handle.read()
                name = getattr(handle, "name", "-")
                answer = post(http, base, raw, secret)
                results.append(
                    {"file": name, "status": answer.status_code, "answer": answer_text(answer)}
                )
                if answer.status_code != 202:
                    refused.append(refusal(answer))
        if as_json:
            emit_json(results)
        else:
            for result in results:
                body = result["answer"]
                shown = json.dumps(body, ensure_ascii=False) if not isinstance(body, str) else body
                click.echo(f"{result['file']}: {result['status']} {shown}")
        if refused:
            tip = advice(refused, settings, signed_with)
            raise click.ClickException(
                f"{len(refused)} of {len(results)} payload(s) refused" + (f": {tip}" if tip else "")
            )
