"""Three real ``serve`` processes on one PostgreSQL database, with ``kill -9`` of role holders."""

from __future__ import annotations

import concurrent.futures
import itertools
import json
import os
import random
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests.fakes.fake_discord import FakeDiscord
from tests.postgres import scratch_database
from tests.support import command_env, free_port, signed_headers, start_serve, wait_for

pytestmark = pytest.mark.slow

SECRET = "shared-secret"
# One file's life: each step changes the status PostFlow shows, so each makes one notification.
STEPS = (
    {"event_type": "file.created"},
    {"event_type": "file.upload.completed"},
    {"event_type": "file.ready"},
    {"event_type": "review.status.changed", "review_status": "needs_review"},
    {"event_type": "review.status.changed", "review_status": "approved"},
)
LABELS = ("UPLOADING", "PROCESSING", "COMPLETED", "WAITING_APPROVAL", "APPROVED")
ROLE_MOVE_SECONDS = 10.0


class Receivers:
    """The running ``serve`` processes, by port."""

    def __init__(
        self, tmp_path: Path, database_url: str, discord: FakeDiscord, **extra: str
    ) -> None:
        self.tmp_path = tmp_path
        self.env = command_env(
            tmp_path / "no-config",
            POSTFLOW_STORE="postgres",
            POSTFLOW_DATABASE_URL=database_url,
            POSTFLOW_WEBHOOK_SECRET=SECRET,
            POSTFLOW_DISCORD_WEBHOOK_URL=discord.webhook_url,
            **extra,
        )
        self.processes: dict[int, subprocess.Popen[str]] = {}

    def start(self, count: int) -> None:
        """Start ``count`` receivers, each with a data directory and a log of its own."""
        for index in range(count):
            port = free_port()
            data = self.tmp_path / f"receiver-{index}"
            self.processes[port] = start_serve(
                self.env, port, "--data-dir", str(data), log=self.tmp_path / f"receiver-{index}.log"
            )

    @property
    def alive(self) -> list[int]:
        """Ports of the receivers still running."""
        return [port for port, p in self.processes.items() if p.poll() is None]

    def health(self, port: int) -> dict[str, Any]:
        """One receiver's /health."""
        return dict(httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).json())

    def holder(self, role: str) -> int | None:
        """The port of the live receiver holding ``role``, if one does."""
        for port in self.alive:
            if self.health(port)["roles"].get(role) == "held":
                return port
        return None

    def kill(self, port: int) -> None:
        """``kill -9`` one receiver."""
        os.kill(self.processes[port].pid, signal.SIGKILL)
        self.processes[port].wait(timeout=10)

    def stop_all(self) -> None:
        """SIGTERM every live receiver; each exits 0."""
        for port in self.alive:
            self.processes[port].send_signal(signal.SIGTERM)
        for process in self.processes.values():
            if process.returncode is None:
                assert process.wait(timeout=30) == 0


def burst(
    receivers: Receivers,
    files: int,
    *,
    kill_at: int | None = None,
    project: Callable[[int], str | None] = lambda index: None,
) -> dict[str, list[str]]:
    """Each file's five steps in order, each step to a random live receiver, files in parallel.

    A step that gets no 202 (its receiver died) is sent again to another, as
    Frame.io retries. ``kill -9`` of the worker-role holder at the ``kill_at``-th 202.
    ``project(index)`` names the project of the index-th file (``None``: none).
    Returns file id -> the delivery ids of its 202s, in step order.
    """
    prefix = uuid.uuid4().hex[:6]
    accepted: dict[str, list[str]] = {}
    count = itertools.count(1)
    victim = receivers.holder("worker") if kill_at else None
    lock = threading.Lock()

    def one_file(index: int, http: httpx.Client) -> None:
        file_id = f"{prefix}-{index}"
        ids: list[str] = []
        for step in STEPS:
            payload: dict[str, Any] = {
                "event_type": step["event_type"],
                "resource": {"id": file_id, "name": f"{file_id}.mov", **step},
            }
            payload["resource"].pop("event_type")
            if project(index) is not None:
                payload["project"] = {"id": project(index)}
            body = json.dumps(payload).encode()
            for _ in range(20):
                port = random.choice(receivers.alive)
                try:
                    answer = http.post(
                        f"http://127.0.0.1:{port}/frameio-webhook",
                        content=body,
                        headers=signed_headers(SECRET, body),
                    )
                except httpx.HTTPError:
                    continue
                if answer.status_code == 202:
                    ids.append(answer.json()["delivery_id"])
                    if next(count) == kill_at and victim is not None:
                        with lock:
                            receivers.kill(victim)
                    break
            else:
                raise AssertionError(f"{file_id}: no receiver accepted {step}")
        accepted[file_id] = ids

    with httpx.Client(timeout=5) as http, concurrent.futures.ThreadPoolExecutor(12) as pool:
        list(pool.map(lambda i: one_file(i, http), range(files)))
    return accepted


def assert_applied_once_in_order(database_url: str, accepted: dict[str, list[str]]) -> None:
    """Each 202 is processed; each file went through its five statuses once, in order."""
    with psycopg.connect(database_url) as conn:
        states = dict(conn.execute("SELECT delivery_id, state FROM deliveries").fetchall())
        records = {
            fid: json.loads(text)
            for fid, text in conn.execute("SELECT file_id, record FROM uploads").fetchall()
        }
    for file_id, ids in accepted.items():
        assert all(states.get(d) == "processed" for d in ids), file_id
        labels = [h["new_status"].split()[0] for h in records[file_id]["history"]]
        assert labels == list(LABELS), (file_id, labels)
    assert set(states.values()) == {"processed"}


def sent_changes(discord: FakeDiscord) -> dict[str, list[str]]:
    """File id -> the status changes Discord received for it, in arrival order."""
    changes: dict[str, list[str]] = {}
    for message in list(discord.messages):
        for embed in message.get("embeds", []):
            file_id = embed["footer"]["text"].rsplit(" ", 1)[-1]
            changes.setdefault(file_id, []).append(embed["description"])
    return changes


def test_three_receivers_share_one_database_through_two_kill_9s(tmp_path: Path) -> None:
    """Every 202 applied once in per-file order, each change sent once, roles move within 10 s."""
    with scratch_database() as url, FakeDiscord(bucket_limit=10_000) as discord:
        receivers = Receivers(tmp_path, url, discord)
        # Discord refuses everything meanwhile: a holder killed mid-send can never cause a
        # duplicate message (that at-most-twice window is documented, not tested here).
        discord.outage(until=time.monotonic() + 3600)
        receivers.start(3)
        try:
            accepted = burst(receivers, files=40, kill_at=60)
            assert len(receivers.alive) == 2
            wait_for(lambda: receivers.health(receivers.alive[0])["backlog"] == 0, timeout=30)
            status = [
                httpx.get(f"http://127.0.0.1:{p}/webhook-status", timeout=5).json()
                for p in receivers.alive
            ]
            shared = ("total_events", "events_by_type", "backlog", "rejections", "last_event")
            first, second = ({k: s[k] for k in shared} for s in status)
            assert first == second, "every receiver shows the same counters"
            assert status[0]["total_events"] >= 200
            assert status[0]["notifications"]["pending"] == 200
            words_seen_by_every_receiver(receivers, next(iter(accepted)))

            holder = receivers.holder("dispatcher")
            assert holder is not None
            killed_at = time.monotonic()
            receivers.kill(holder)
            wait_for(lambda: receivers.holder("dispatcher") is not None, ROLE_MOVE_SECONDS)
            moved_in = time.monotonic() - killed_at
            discord.outage_until = None
            wait_for(lambda: len(discord.messages) >= 200, timeout=60)
            more = burst(receivers, files=10)
            wait_for(lambda: len(discord.messages) >= 250, timeout=60)
            time.sleep(0.5)  # anything sent twice would arrive now
        finally:
            receivers.stop_all()
        assert_applied_once_in_order(url, accepted | more)
        changes = sent_changes(discord)
        assert sorted(changes) == sorted(accepted | more)
        for file_id, descriptions in changes.items():
            assert len(descriptions) == len(LABELS), (file_id, descriptions)
            for label, description in zip(LABELS, descriptions, strict=True):
                assert label in description.split("→")[-1], (file_id, descriptions)
        logs = "".join(p.read_text() for p in tmp_path.glob("receiver-*.log"))
        assert "Traceback" not in logs
        print(f"dispatcher role moved in {moved_in:.1f} s")


def words_seen_by_every_receiver(receivers: Receivers, file_id: str) -> None:
    """A status word nobody knows, sent to one receiver, is listed by every receiver."""
    body = json.dumps(
        {"event_type": "file.status.changed", "resource": {"id": file_id, "status": "weird"}}
    ).encode()
    answer = httpx.post(
        f"http://127.0.0.1:{receivers.alive[0]}/frameio-webhook",
        content=body,
        headers=signed_headers(SECRET, body),
        timeout=5,
    )
    assert answer.status_code == 202, answer.text

    def seen() -> list[list[str]]:
        return [
            httpx.get(f"http://127.0.0.1:{port}/webhook-status", timeout=5).json()[
                "unknown_statuses_seen"
            ]
            for port in receivers.alive
        ]

    assert len(receivers.alive) > 1
    wait_for(lambda: seen() == [["weird"]] * len(receivers.alive), timeout=30)


def quarantine_one(database_url: str) -> None:
    """Put a quarantined delivery in the shared database, as a broken body would end up."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO deliveries (delivery_id, received_at, event_type, file_id, body, state, "
            "last_error) VALUES ('bad', now(), 'file.ready', 'bad', '\\x7b', 'quarantined', "
            "'unreadable')"
        )


def clear_quarantine(database_url: str) -> None:
    """Someone dealt with the quarantined delivery."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("DELETE FROM deliveries WHERE state = 'quarantined'")


def titles(discord: FakeDiscord) -> list[str]:
    """The embed titles a fake Discord received, in order."""
    return [m["embeds"][0]["title"] for m in list(discord.messages)]


def test_each_destination_and_the_alerts_run_on_one_receiver_at_a_time(tmp_path: Path) -> None:
    """A routed project, a default channel, an alerts channel: each message once, across kill -9s."""
    with (
        scratch_database() as url,
        FakeDiscord(bucket_limit=10_000) as default,
        FakeDiscord(bucket_limit=10_000, webhook_id="400000000000000002") as film,
        FakeDiscord(bucket_limit=10_000, webhook_id="400000000000000003") as alerts,
    ):
        routes = json.dumps([{"project": "p-film", "webhook_url": film.webhook_url}])
        receivers = Receivers(
            tmp_path,
            url,
            default,
            POSTFLOW_DISCORD_ROUTES=routes,
            POSTFLOW_DISCORD_ALERTS_URL=alerts.webhook_url,
            POSTFLOW_ALERT_CHECK_INTERVAL="0.2",
            POSTFLOW_ALERT_RESOLVE_AFTER="0.5",
        )
        # Rate-limited meanwhile (429, retried each second): nothing is accepted while holders
        # are killed, so a kill mid-send cannot cause a duplicate (that window is documented).
        for discord in (default, film, alerts):
            discord.outage(until=time.monotonic() + 3600, status=429)
        receivers.start(3)
        try:
            accepted = burst(receivers, files=20, project=lambda i: "p-film" if i % 2 else None)
            quarantine_one(url)
            wait_for(lambda: pending(url) == 101, timeout=30)  # 100 changes and one alert
            for port in receivers.alive:  # every receiver shows the one open incident
                wait_for(lambda p=port: open_incidents(receivers, p) == ["deliveries_quarantined"])
            for role in ("worker", "dispatcher", "alerts"):
                held = [p for p in receivers.alive if receivers.health(p)["roles"][role] == "held"]
                assert len(held) == 1, (role, held)
            doomed = {receivers.holder("dispatcher"), receivers.holder("alerts")}
            assert None not in doomed
            killed_at = time.monotonic()
            for port in doomed:
                receivers.kill(port)  # type: ignore[arg-type]
            for role in ("dispatcher", "alerts"):
                wait_for(lambda r=role: receivers.holder(r) is not None, ROLE_MOVE_SECONDS)
            moved_in = time.monotonic() - killed_at
            for discord in (default, film, alerts):
                discord.outage_until = None
            wait_for(lambda: len(default.messages) >= 50 and len(film.messages) >= 50, 60)
            wait_for(lambda: len(alerts.messages) >= 1, timeout=30)
            clear_quarantine(url)
            wait_for(lambda: len(alerts.messages) >= 2, timeout=30)
            time.sleep(1.0)  # anything sent twice would arrive now
        finally:
            receivers.stop_all()
        assert_applied_once_in_order(url, accepted)
        routed = {f for f in accepted if index_of(f) % 2}
        for discord, files in ((film, routed), (default, set(accepted) - routed)):
            changes = sent_changes(discord)
            assert set(changes) == files
            for file_id, descriptions in changes.items():
                assert len(descriptions) == len(LABELS), (file_id, descriptions)
        assert titles(alerts) == [
            "🚨 A delivery was quarantined",
            "✅ Resolved: A delivery was quarantined",
        ]
        logs = "".join(p.read_text() for p in tmp_path.glob("receiver-*.log"))
        assert "Traceback" not in logs
        print(f"dispatcher and alerts roles moved in {moved_in:.1f} s")


def index_of(file_id: str) -> int:
    """The index ``burst`` gave a file (its id ends in ``-<index>``)."""
    return int(file_id.rsplit("-", 1)[-1])


def pending(database_url: str) -> int:
    """Notifications not sent yet, in the shared database."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT count(*) FROM notifications WHERE state = 'pending'").fetchone()
    return int(row[0]) if row else 0


def open_incidents(receivers: Receivers, port: int) -> list[str]:
    """The reasons of the incidents one receiver's /health shows open."""
    return [i["reason"] for i in receivers.health(port)["alerts"]["open_incidents"]]
