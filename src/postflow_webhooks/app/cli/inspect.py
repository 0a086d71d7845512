"""``status``, ``uploads`` and ``replay``: looking at a receiver and setting things right."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import click

from postflow_webhooks.adapters.sqlite import DATABASE_NAME
from postflow_webhooks.app.cli.common import emit_json, get_json, pairs, short_time, table
from postflow_webhooks.app.settings import Settings
from postflow_webhooks.domain.errors import StorageError
from postflow_webhooks.service.dispatcher import replay_dead_letters


def register(group: click.Group, settings_for: Any) -> None:
    """Add the inspection commands to the CLI group."""

    @group.command()
    @click.option("--url", default=None, help="Receiver base URL (default: the configured one).")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
    def status(url: str | None, as_json: bool) -> None:
        """Show /webhook-status: events, backlog, rejections, tunnel, notifications."""
        settings: Settings = settings_for({})
        data = get_json(url or settings.local_url, "/webhook-status")
        if as_json:
            emit_json(data)
            return
        tunnel = data.get("tunnel_info") or {}
        notes = data.get("notifications") or {}
        last = data.get("last_event") or {}
        click.echo(
            pairs(
                [
                    ("webhook status", data.get("webhook_status")),
                    ("signatures", data.get("signature_verification")),
                    ("total events", data.get("total_events")),
                    ("backlog", data.get("backlog")),
                    ("quarantined", data.get("quarantined")),
                    ("rejected", data.get("rejected_total")),
                    ("local webhook URL", data.get("local_webhook_url")),
                    ("public webhook URL", data.get("public_webhook_url")),
                    ("tunnel", f"{tunnel.get('mode')} / {tunnel.get('state')}"),
                    ("notifications", notes.get("destination", "disabled")),
                    ("  pending / dead", f"{notes.get('pending')} / {notes.get('dead_letters')}"),
                    (
                        "last event",
                        " ".join(str(last.get(k)) for k in ("event_type", "file_id", "outcome"))
                        if last
                        else None,
                    ),
                ]
            )
        )
        by_type = data.get("events_by_type") or {}
        if by_type:
            click.echo()
            click.echo(table(["event", "count"], sorted(by_type.items())))
        rejections = data.get("rejections") or {}
        if rejections:
            click.echo()
            click.echo(table(["rejected because", "count"], sorted(rejections.items())))

    @group.command()
    @click.option("--url", default=None, help="Receiver base URL (default: the configured one).")
    @click.option(
        "--status", "status_filter", default=None, help="Only this status (e.g. APPROVED)."
    )
    @click.option("--limit", default=50, show_default=True, help="How many files.")
    @click.option("--offset", default=0, show_default=True, help="Skip this many files.")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
    def uploads(
        url: str | None, status_filter: str | None, limit: int, offset: int, as_json: bool
    ) -> None:
        """List tracked files with status, version, last change and link."""
        settings: Settings = settings_for({})
        params: dict[str, Any] = {"limit": limit, "offset": offset}
        if status_filter:
            params["status"] = status_filter
        data = get_json(url or settings.local_url, "/uploads", params)
        if as_json:
            emit_json(data)
            return
        rows = [
            (
                u["file_id"],
                u.get("name"),
                u.get("status_label") or "-",
                u.get("version"),
                short_time(u.get("updated_at")),
                u.get("view_url"),
            )
            for u in data["uploads"]
        ]
        click.echo(table(["file id", "name", "status", "version", "last change", "link"], rows))
        click.echo(f"\n{len(rows)} of {data['total']} file(s)")

    @group.command()
    @click.option(
        "--state-dir",
        type=click.Path(path_type=Path),
        default=None,
        help="The receiver's state directory (its data/ is used).",
    )
    @click.option(
        "--data-dir",
        type=click.Path(path_type=Path),
        default=None,
        help="The receiver's data directory (default: the configured one).",
    )
    @click.option(
        "--delivery",
        "deliveries",
        type=int,
        multiple=True,
        help="Replay this quarantined delivery (repeatable).",
    )
    @click.option(
        "--notification",
        "notifications",
        type=int,
        multiple=True,
        help="Resend this dead letter (repeatable).",
    )
    @click.option(
        "--all",
        "everything",
        is_flag=True,
        help="Replay every quarantined delivery and dead letter.",
    )
    @click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
    def replay(
        state_dir: Path | None,
        data_dir: Path | None,
        deliveries: tuple[int, ...],
        notifications: tuple[int, ...],
        everything: bool,
        as_json: bool,
    ) -> None:
        """List quarantined deliveries and dead letters; replay the ones you name."""
        settings: Settings = settings_for({"data_dir": data_dir, "state_dir": state_dir})
        if settings.store in ("sqlite", "json"):
            _require_database(settings.data_dir)
        try:
            result = asyncio.run(_replay(settings, deliveries, notifications, everything))
        except StorageError as exc:
            raise click.ClickException(str(exc)) from None
        if as_json:
            emit_json(result)
            _refuse_unknown(result)
            return
        click.echo(
            table(
                ["delivery", "event", "received", "reason"],
                [
                    (q["seq"], q["event_type"], short_time(q["received_at"]), q["reason"])
                    for q in result["quarantined"]
                ],
            )
        )
        click.echo()
        click.echo(
            table(
                ["notification", "file", "status", "reason"],
                [
                    (d["id"], d["file_id"], d["new_status"], d["reason"])
                    for d in result["dead_letters"]
                ],
            )
        )
        click.echo(
            f"\nreplayed {result['replayed_deliveries']} delivery(ies) and "
            f"{result['replayed_notifications']} notification(s)"
        )
        _refuse_unknown(result)


def _require_database(data_dir: Path) -> None:
    """Refuse a data directory with no database rather than create an empty one (a typo)."""
    fix = "check --data-dir (or POSTFLOW_DATA_DIR): it must be the receiver's data directory"
    if not data_dir.exists():
        raise click.ClickException(f"there is no data directory {data_dir}; {fix}")
    if not data_dir.is_dir():
        raise click.ClickException(f"the data directory {data_dir} is a file; {fix}")
    if not (data_dir / DATABASE_NAME).is_file():
        raise click.ClickException(f"there is no database {data_dir / DATABASE_NAME}; {fix}")


def _refuse_unknown(result: dict[str, Any]) -> None:
    """Exit 1 naming the ids that were asked for but are not set aside."""
    problems = []
    if result["unknown_deliveries"]:
        ids = ", ".join(str(i) for i in result["unknown_deliveries"])
        problems.append(f"no quarantined delivery {ids} (--delivery)")
    if result["unknown_notifications"]:
        ids = ", ".join(str(i) for i in result["unknown_notifications"])
        problems.append(f"no dead letter {ids} (--notification)")
    if problems:
        raise click.ClickException(
            f"{'; '.join(problems)}: use the numbers 'postflow-webhooks replay' lists"
        )


async def _replay(
    settings: Settings,
    deliveries: tuple[int, ...],
    notifications: tuple[int, ...],
    everything: bool,
) -> dict[str, Any]:
    from postflow_webhooks.app.policies import Policies
    from postflow_webhooks.app.stores import build_store

    store = build_store(settings, Policies())  # the configured one: SQLite or PostgreSQL
    db, journal, outbox = store.storage, store.journal, store.outbox
    db.open()
    try:
        quarantined = await journal.quarantined(limit=1000)
        dead = await outbox.dead_letters(limit=1000)
        unknown_deliveries, unknown_notes = [], []
        if everything:
            moved_deliveries = await journal.requeue([q.seq for q in quarantined])
            moved_notes = await replay_dead_letters(outbox)
        else:
            moved_deliveries = moved_notes = 0
            for seq in dict.fromkeys(deliveries):
                moved = await journal.requeue([seq])
                moved_deliveries += moved
                if not moved:
                    unknown_deliveries.append(seq)
            for note in dict.fromkeys(notifications):
                moved = await replay_dead_letters(outbox, [note])
                moved_notes += moved
                if not moved:
                    unknown_notes.append(note)
        return {
            "quarantined": [
                {
                    "seq": q.seq,
                    "delivery_id": q.delivery_id,
                    "event_type": q.event_type,
                    "received_at": q.received_at.isoformat(),
                    "reason": q.reason,
                }
                for q in quarantined
            ],
            "dead_letters": [
                {
                    "id": d.notification.id,
                    "file_id": d.notification.file_id,
                    "new_status": d.notification.new_status.label
                    if d.notification.new_status
                    else None,
                    "reason": d.reason,
                    "at": d.at.isoformat(),
                }
                for d in dead
            ],
            "replayed_deliveries": moved_deliveries,
            "replayed_notifications": moved_notes,
            "unknown_deliveries": unknown_deliveries,
            "unknown_notifications": unknown_notes,
        }
    finally:
        await db.close()
