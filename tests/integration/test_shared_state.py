"""The signing secret with a shared store: stored through one receiver, accepted by all.

Two real ``serve`` processes share one PostgreSQL database, each with a data
directory of its own and the same configured ``POSTFLOW_WEBHOOK_SECRET``.
``register`` runs beside the first one (its data directory); the second one,
which never sees that file, must accept deliveries signed with the new
secret within a few seconds. The configured secret keeps working on both, the
new secret is in no output or log, and ``unregister`` (from the other machine)
deletes the shared copy.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from pathlib import Path

import httpx
import psycopg
import pytest

from postflow_webhooks.app.sharing import SECRET_KEY
from tests.fakes.fake_frameio import FakeFrameio
from tests.postgres import scratch_database
from tests.support import (
    POSTFLOW_COMMAND,
    command_env,
    free_port,
    signed_headers,
    start_serve,
    wait_for,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

CONFIGURED = "the-configured-secret"


def env_for(fake: FakeFrameio, tmp_path: Path, name: str, url: str) -> dict[str, str]:
    """One receiver's environment: the shared database, its own data directory, the fake API."""
    return command_env(
        tmp_path / name / "config",
        POSTFLOW_DATA_DIR=str(tmp_path / name / "data"),
        POSTFLOW_LOG_DIR=str(tmp_path / name / "logs"),
        POSTFLOW_STORE="postgres",
        POSTFLOW_DATABASE_URL=url,
        POSTFLOW_WEBHOOK_SECRET=CONFIGURED,
        **fake.receiver_env(),
        POSTFLOW_RECONCILE_INTERVAL="3600",
    )


def post_signed(port: int, secret: str, file_id: str) -> int:
    """POST a delivery for ``file_id`` signed with ``secret``; the status code."""
    body = json.dumps({"type": "file.ready", "resource": {"id": file_id, "type": "file"}}).encode()
    answer = httpx.post(
        f"http://127.0.0.1:{port}/frameio-webhook",
        content=body,
        headers=signed_headers(secret, body),
        timeout=5,
    )
    return answer.status_code


def test_a_secret_registered_beside_one_receiver_is_accepted_by_the_other(tmp_path: Path) -> None:
    """``register`` on the first receiver's machine: the second accepts its secret within 3 s."""
    with scratch_database() as url, FakeFrameio() as fake:
        first_env = env_for(fake, tmp_path, "first", url)
        second_env = env_for(fake, tmp_path, "second", url)
        ports = [free_port(), free_port()]
        logs = [tmp_path / "first.log", tmp_path / "second.log"]
        processes = [
            start_serve(env, port, log=log)
            for env, port, log in zip((first_env, second_env), ports, logs, strict=True)
        ]
        try:
            file_id = fake.add_file("shared.mov", status="transcoded")
            assert post_signed(ports[1], "not-yet-known", "f-0") == 401
            done = subprocess.run(
                [POSTFLOW_COMMAND, "register", f"http://127.0.0.1:{ports[0]}", "--json"],
                env=first_env,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            registered_at = time.monotonic()
            assert done.returncode == 0, done.stderr
            data = json.loads(done.stdout)
            assert data["secret_shared_in"].endswith(url.rsplit("/", 1)[1])
            secret = (tmp_path / "first" / "data" / "frameio_webhook_secret").read_text().strip()
            assert secret and secret not in done.stdout + done.stderr
            assert not (tmp_path / "second" / "data" / "frameio_webhook_secret").exists()
            with psycopg.connect(url) as conn:
                row = conn.execute(
                    "SELECT value FROM shared_state WHERE key = %s", (SECRET_KEY,)
                ).fetchone()
            assert row == (secret,)

            wait_for(lambda: post_signed(ports[1], secret, "f-1") == 202, timeout=3)
            took = time.monotonic() - registered_at
            assert took < 3.0, f"the second receiver took {took:.1f} s"

            def to_second(hook: str) -> str:
                """The tunnel's edge sends this delivery to the second receiver."""
                return hook.replace(f"127.0.0.1:{ports[0]}", f"127.0.0.1:{ports[1]}")

            answer = asyncio.run(fake.deliver("file.ready", file_id, resolve=to_second))
            assert answer is not None and answer.status_code == 202, answer.text
            for port in ports:  # the configured secret keeps working everywhere
                assert post_signed(port, CONFIGURED, f"f-conf-{port}") == 202
                assert post_signed(port, secret, f"f-new-{port}") == 202
                assert post_signed(port, "a-wrong-secret", f"f-bad-{port}") == 401
            gone = subprocess.run(
                [POSTFLOW_COMMAND, "unregister"],
                env=second_env,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert gone.returncode == 0, gone.stderr
            with psycopg.connect(url) as conn:
                left = conn.execute(
                    "SELECT count(*) FROM shared_state WHERE key = %s", (SECRET_KEY,)
                )
                assert left.fetchone() == (0,), "unregister forgets the shared secret"
        finally:
            for process in processes:
                process.terminate()
                process.wait(timeout=30)
        for log in logs:
            assert secret not in log.read_text(encoding="utf-8")
