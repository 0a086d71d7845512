"""Every CLI command end to end, in a subprocess, against real servers and fakes."""

from __future__ import annotations

import asyncio
import concurrent.futures
import fcntl
import json
import os
import signal
import socket
import sqlite3
import subprocess
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from postflow_webhooks.app.datadir import LOCK_NAME
from tests.fakes.cloudflared_helpers import FAKE_CLOUDFLARED, process_gone
from tests.fakes.fake_discord import FakeDiscord
from tests.fakes.fake_frameio import FakeFrameio
from tests.support import POSTFLOW_COMMAND, command_env, free_port, wait_for
from tests.support import start_serve as serve_on

pytestmark = pytest.mark.slow
SECRET = "cli-secret"


def cli_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """An environment with nothing from the developer's own POSTFLOW_ settings."""
    return command_env(
        tmp_path / "config",
        POSTFLOW_DATA_DIR=str(tmp_path / "data"),
        POSTFLOW_LOG_DIR=str(tmp_path / "logs"),
        **extra,
    )


def cli(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``postflow-webhooks ARGS``."""
    return subprocess.run(
        [POSTFLOW_COMMAND, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def start_serve(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    """``serve`` on the environment's port in the background, waiting until /health answers."""
    return serve_on(env, int(env["POSTFLOW_PORT"]), *args)


def stop(process: subprocess.Popen[str]) -> tuple[int, str]:
    """SIGTERM; the exit code and what it printed on stderr."""
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=30)
    return process.returncode, err


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A running ``serve`` with a secret; yields its environment."""
    tmp = tmp_path_factory.mktemp("cli")
    env = cli_env(tmp, POSTFLOW_PORT=str(free_port()), POSTFLOW_WEBHOOK_SECRET=SECRET)
    process = start_serve(env)
    yield env
    code, err = stop(process)
    assert code == 0, err
    assert "receiver stopped" in err


def test_simulate_sends_a_signed_sequence_and_prints_the_final_statuses(
    served: dict[str, str],
) -> None:
    """``simulate`` drives two files to APPROVED through signed deliveries."""
    done = cli(served, "simulate", "--files", "2")
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("APPROVED ✅") == 2
    v4 = cli(served, "simulate", "--dialect", "v4", "--json")
    assert v4.returncode == 0, v4.stderr
    result = json.loads(v4.stdout)
    assert result["answers"] == {"202": 4}
    assert result["uploads"][0]["status_label"] == "COMPLETED 🎉"


def test_status_and_uploads_show_tables_and_json(served: dict[str, str]) -> None:
    """``status`` and ``uploads`` read the running receiver, as tables or JSON."""
    cli(served, "simulate", "--files", "1", "--prefix", "listing")
    table = cli(served, "status")
    assert table.returncode == 0 and "total events" in table.stdout and "signatures" in table.stdout
    data = json.loads(cli(served, "status", "--json").stdout)
    assert data["signature_verification"] == "on" and data["total_events"] >= 5
    approved = json.loads(cli(served, "uploads", "--status", "approved", "--json").stdout)
    assert approved["total"] >= 1
    assert all(u["status"] == "APPROVED" for u in approved["uploads"])
    listed = cli(served, "uploads", "--limit", "1")
    assert "1 of" in listed.stdout and "APPROVED ✅" in listed.stdout


def test_doctor_passes_on_a_healthy_setup(served: dict[str, str]) -> None:
    """``doctor`` prints one line per check and exits 0 when nothing needs fixing."""
    done = cli(served, "doctor")
    assert done.returncode == 0, done.stdout
    for name in (
        "configuration",
        "signing secret",
        "data directory",
        "port",
        "cloudflared",
        "discord",
    ):
        assert name in done.stdout


def test_doctor_names_the_fix_and_fails(tmp_path: Path) -> None:
    """No secret with a tunnel and a broken Discord URL: each problem says its fix; exit 1."""
    env = cli_env(
        tmp_path,
        POSTFLOW_DISCORD_WEBHOOK_URL="http://127.0.0.1:9/api/webhooks/1/tok",
        POSTFLOW_TUNNEL="quick",
    )
    done = cli(env, "doctor", "--json")
    assert done.returncode == 1
    checks = {c["check"]: c for c in json.loads(done.stdout)}
    assert (
        not checks["signing secret"]["ok"]
        and "POSTFLOW_WEBHOOK_SECRET" in checks["signing secret"]["detail"]
    )
    assert not checks["discord"]["ok"] and "tok" not in checks["discord"]["detail"]


def test_replay_lists_and_requeues_a_quarantined_delivery(served: dict[str, str]) -> None:
    """A delivery the core cannot read is quarantined, listed, and replayed on request."""
    db = sqlite3.connect(Path(served["POSTFLOW_DATA_DIR"]) / "postflow.sqlite3")
    with db:
        db.execute(
            "INSERT INTO deliveries (delivery_id, received_at, event_type, file_id, body) "
            "VALUES (?, 0, 'file.ready', 'broken-1', ?)",
            (uuid.uuid4().hex, b"{not json"),
        )
    seq = db.execute("SELECT max(seq) FROM deliveries").fetchone()[0]
    db.close()
    url = f"http://127.0.0.1:{served['POSTFLOW_PORT']}"
    wait_for(lambda: httpx.get(f"{url}/webhook-status").json()["quarantined"] >= 1)
    listed = json.loads(cli(served, "replay", "--json").stdout)
    assert any(q["seq"] == seq and "unreadable" in q["reason"] for q in listed["quarantined"])
    replayed = json.loads(cli(served, "replay", "--delivery", str(seq), "--json").stdout)
    assert replayed["replayed_deliveries"] == 1


def test_a_replayed_delivery_is_applied_by_the_running_receiver(served: dict[str, str]) -> None:
    """``replay --delivery`` from another process: the running receiver applies it, unprompted."""
    body = json.dumps(
        {"event_type": "file.ready", "resource": {"id": "replayed-1", "name": "r.mov"}}
    ).encode()
    db = sqlite3.connect(Path(served["POSTFLOW_DATA_DIR"]) / "postflow.sqlite3")
    with db:
        db.execute(
            "INSERT INTO deliveries (delivery_id, received_at, event_type, file_id, body, state, "
            "last_error) VALUES (?, 0, 'file.ready', 'replayed-1', ?, 'quarantined', ?)",
            (uuid.uuid4().hex, body, "the rules failed: RuntimeError: since fixed"),
        )
    seq = db.execute("SELECT max(seq) FROM deliveries").fetchone()[0]
    db.close()
    url = f"http://127.0.0.1:{served['POSTFLOW_PORT']}"
    assert httpx.get(f"{url}/uploads/replayed-1").status_code == 404
    replayed = json.loads(cli(served, "replay", "--delivery", str(seq), "--json").stdout)
    assert replayed["replayed_deliveries"] == 1
    wait_for(lambda: httpx.get(f"{url}/uploads/replayed-1").status_code == 200)
    assert httpx.get(f"{url}/uploads/replayed-1").json()["status"] == "COMPLETED"
    listed = json.loads(cli(served, "replay", "--json").stdout)
    assert all(q["seq"] != seq for q in listed["quarantined"])


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_signal_during_a_burst_applies_the_backlog_and_exits_0(
    tmp_path: Path, stop_signal: signal.Signals
) -> None:
    """Ctrl-C or SIGTERM mid-burst: ``serve`` applies every accepted delivery, then exits 0."""
    port = free_port()
    log = tmp_path / "serve.log"
    process = serve_on(cli_env(tmp_path), port, log=log)
    url = f"http://127.0.0.1:{port}/frameio-webhook"
    accepted: list[str] = []
    lock = threading.Lock()

    def send(index: int) -> None:
        body = {"event_type": "file.created", "resource": {"id": f"sig-{index}", "name": "s.mov"}}
        try:
            answer = http.post(url, content=json.dumps(body).encode())
        except httpx.HTTPError:
            return
        if answer.status_code == 202:
            with lock:
                accepted.append(answer.json()["delivery_id"])
                if len(accepted) == 30:
                    process.send_signal(stop_signal)

    with httpx.Client(timeout=10) as http, concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(send, range(300)))
    process.wait(timeout=30)
    err = log.read_text(encoding="utf-8")
    assert process.returncode == 0, err
    assert "receiver stopped" in err and "Traceback" not in err
    assert len(accepted) >= 30
    db = sqlite3.connect(tmp_path / "data" / "postflow.sqlite3")
    states = dict(db.execute("SELECT delivery_id, state FROM deliveries").fetchall())
    db.close()
    assert {states.get(delivery_id) for delivery_id in accepted} == {"processed"}
    assert set(states.values()) == {"processed"}


def test_serve_on_a_taken_port_names_the_port_and_the_fix(tmp_path: Path) -> None:
    """``serve`` on a busy port exits 1 with the port and how to pick another."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = cli(cli_env(tmp_path), "serve", "--port", str(port))
    assert done.returncode == 1
    assert f"port {port}" in done.stderr and "--port" in done.stderr
    assert "Traceback" not in done.stderr


def test_serve_on_a_data_directory_another_receiver_uses_says_so(tmp_path: Path) -> None:
    """A second receiver on the same data directory exits 1 at once, naming it, no traceback."""
    data = tmp_path / "data"
    data.mkdir()
    holder = os.open(data / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(holder, fcntl.LOCK_EX)
    try:
        done = cli(cli_env(tmp_path, POSTFLOW_PORT=str(free_port())), "serve")
    finally:
        os.close(holder)
    assert done.returncode == 1
    assert f"is using the data directory {data}" in done.stderr
    assert "--data-dir" in done.stderr and "Traceback" not in done.stderr


def test_serve_with_a_broken_config_file_names_the_file(tmp_path: Path) -> None:
    """A malformed config file stops ``serve`` with the file and the line."""
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "receiver.json").write_text('{"port": }', encoding="utf-8")
    done = cli(cli_env(tmp_path), "serve")
    assert done.returncode == 1
    assert "receiver.json" in done.stderr and "line 1" in done.stderr
    assert "Traceback" not in done.stderr


def test_serve_refuses_a_public_tunnel_without_a_secret(tmp_path: Path) -> None:
    """``serve --tunnel quick`` with no secret is refused with the explanation."""
    env = cli_env(tmp_path, POSTFLOW_CLOUDFLARED=str(FAKE_CLOUDFLARED))
    done = cli(env, "serve", "--tunnel", "quick", "--port", str(free_port()))
    assert done.returncode == 1
    assert "secret" in done.stderr.lower() and "Traceback" not in done.stderr


def test_serve_with_a_quick_tunnel_logs_the_public_webhook_url(tmp_path: Path) -> None:
    """With the fake cloudflared, ``serve --tunnel quick`` publishes a public webhook URL."""
    env = cli_env(
        tmp_path,
        POSTFLOW_PORT=str(free_port()),
        POSTFLOW_WEBHOOK_SECRET=SECRET,
        POSTFLOW_CLOUDFLARED=str(FAKE_CLOUDFLARED),
        FAKE_CLOUDFLARED_STATE_DIR=str(tmp_path / "fake"),
    )
    process = start_serve(env, "--tunnel", "quick")
    url = f"http://127.0.0.1:{env['POSTFLOW_PORT']}"
    try:
        wait_for(
            lambda: httpx.get(f"{url}/webhook-status").json()["public_webhook_url"], timeout=20
        )
        public = httpx.get(f"{url}/webhook-status").json()["public_webhook_url"]
        assert public.startswith("https://") and public.endswith(
            ".trycloudflare.com/frameio-webhook"
        )
    finally:
        code, err = stop(process)
    assert code == 0
    assert f"webhook URL for Frame.io: {public}" in err
    assert (tmp_path / "logs" / "webhook_tunnel.log").exists()


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_tunnel_command_prints_the_urls_and_stops_cleanly(
    tmp_path: Path, stop_signal: signal.Signals
) -> None:
    """``tunnel`` prints the public and webhook URLs, then stops cleanly on Ctrl-C or SIGTERM."""
    env = cli_env(
        tmp_path,
        POSTFLOW_WEBHOOK_SECRET=SECRET,
        POSTFLOW_CLOUDFLARED=str(FAKE_CLOUDFLARED),
        FAKE_CLOUDFLARED_STATE_DIR=str(tmp_path / "fake"),
    )
    process = subprocess.Popen(
        [POSTFLOW_COMMAND, "tunnel", "--port", str(free_port())],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    first = process.stdout.readline()
    second = process.stdout.readline()
    process.send_signal(stop_signal)
    _, err = process.communicate(timeout=30)
    assert first.startswith("Public URL:") and ".trycloudflare.com" in first
    assert second.startswith("Webhook URL:") and second.strip().endswith("/frameio-webhook")
    assert process.returncode == 0, err
    assert "tunnel stopped" in err
    records = [json.loads(p.read_text()) for p in (tmp_path / "fake").glob("start-*.json")]
    assert records
    for record in records:
        wait_for(lambda pid=record["pid"]: process_gone(pid))


def test_tunnel_command_refuses_without_a_secret(tmp_path: Path) -> None:
    """``tunnel`` with no signing secret is refused, naming the loud override."""
    env = cli_env(tmp_path, POSTFLOW_CLOUDFLARED=str(FAKE_CLOUDFLARED))
    done = cli(env, "tunnel", "--port", str(free_port()))
    assert done.returncode == 1
    assert "allow-insecure-public" in done.stderr.lower() or "ALLOW_INSECURE" in done.stderr


def test_register_and_unregister_against_the_fake_frameio(tmp_path: Path) -> None:
    """``register`` creates our webhook and stores its secret; ``unregister`` deletes both."""
    with FakeFrameio() as fake:
        env = frameio_env(fake, tmp_path)
        done = cli(env, "register", "https://abc.trycloudflare.com", "--json")
        assert done.returncode == 0, done.stderr
        data = json.loads(done.stdout)
        assert (
            data["created"] is True
            and data["url"] == "https://abc.trycloudflare.com/frameio-webhook"
        )
        secret_file = Path(data["secret_stored_in"])
        assert secret_file.exists() and (secret_file.stat().st_mode & 0o777) == 0o600
        assert fake.client_secret not in done.stdout + done.stderr
        again = json.loads(cli(env, "register", "https://xyz.trycloudflare.com", "--json").stdout)
        assert again["created"] is False and again["webhook_id"] == data["webhook_id"]
        gone = cli(env, "unregister")
        assert gone.returncode == 0 and "deleted" in gone.stdout
        assert not secret_file.exists()


def test_register_without_credentials_says_where_to_put_them(tmp_path: Path) -> None:
    """No API credentials: ``register`` exits 1 naming the config file."""
    done = cli(cli_env(tmp_path), "register", "https://abc.trycloudflare.com")
    assert done.returncode == 1 and "frameio_config.json" in done.stderr


def frameio_env(fake: FakeFrameio, tmp_path: Path, **extra: str) -> dict[str, str]:
    """A CLI environment whose Frame.io is the fake."""
    return cli_env(
        tmp_path,
        **fake.receiver_env(),
        POSTFLOW_FRAMEIO_IMS_AUTHORIZE_URL=f"{fake.url}/ims/authorize/v2",
        **extra,
    )


def test_auth_runs_the_sign_in_flow_and_says_what_it_stored(tmp_path: Path) -> None:
    """``auth --no-browser`` prints the sign-in URL; following it stores tokens (0600)."""
    with FakeFrameio() as fake:
        redirect = f"http://127.0.0.1:{free_port()}/callback"
        env = frameio_env(fake, tmp_path, POSTFLOW_FRAMEIO_REDIRECT_URI=redirect)
        process = subprocess.Popen(
            [POSTFLOW_COMMAND, "auth", "--no-browser", "--timeout", "20"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert process.stderr is not None
        assert process.stderr.readline().startswith("Sign in at:")
        sign_in = process.stderr.readline().strip()
        assert httpx.get(sign_in, follow_redirects=True, timeout=10).status_code == 200
        out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert "refresh token  yes" in out
    cache = tmp_path / "data" / "frameio_token.json"
    assert cache.exists() and (cache.stat().st_mode & 0o777) == 0o600
    assert fake.grants == ["authorization_code"]
    assert "access_token" not in out + err


def test_a_registered_secret_is_used_at_once_by_a_running_receiver(tmp_path: Path) -> None:
    """``register`` from another process: within a second the receiver verifies with it."""
    with FakeFrameio() as fake:
        env = frameio_env(fake, tmp_path, POSTFLOW_PORT=str(free_port()))
        process = start_serve(env)
        url = f"http://127.0.0.1:{env['POSTFLOW_PORT']}"
        try:
            unsigned = json.dumps({"event_type": "file.ready", "resource": {"id": "s-1"}}).encode()
            before = httpx.post(f"{url}/frameio-webhook", content=unsigned).status_code
            done = cli(env, "register", url, "--json")
            assert done.returncode == 0, done.stderr
            wait_for(
                lambda: httpx.post(f"{url}/frameio-webhook", content=unsigned).status_code == 401,
                timeout=5,
            )
            after = httpx.post(f"{url}/frameio-webhook", content=unsigned).status_code
            file_id = fake.add_file("signed.mov", status="transcoded")
            delivered = asyncio.run(fake.deliver("file.ready", file_id))
            health = httpx.get(f"{url}/health").json()
        finally:
            stop(process)
    assert before == 202
    assert after == 401
    assert delivered is not None and delivered.status_code == 202
    assert health["signature_verification"] == "on"


def test_doctor_lists_the_review_fields_options_beside_the_mapping(tmp_path: Path) -> None:
    """doctor shows each option of the field in Frame.io and its meaning; unmapped ones to fix."""
    with FakeFrameio() as fake:
        fake.status_field_name = "Review Stage"
        fake.review_options = ["Needs Review", "Changes Requested", "Approved", "Legal Hold"]
        env = frameio_env(
            fake,
            tmp_path,
            POSTFLOW_REVIEW_FIELD="review stage",
            POSTFLOW_REVIEW_OPTIONS='{"Changes Requested": "REJECTED"}',
        )
        done = cli(env, "doctor", "--json")
        line = {c["check"]: c for c in json.loads(done.stdout)}["review field"]
        assert not line["ok"]
        assert line["detail"].startswith(
            "'Review Stage' in Frame.io: Needs Review -> WAITING_APPROVAL; "
            "Changes Requested -> REJECTED; Approved -> APPROVED; Legal Hold -> unmapped."
        )
        assert '"Legal Hold": "<STATUS or null>"' in line["detail"]
        mapped = {
            **env,
            "POSTFLOW_REVIEW_OPTIONS": '{"Changes Requested": "REJECTED", "Legal Hold": null}',
        }
        fixed = {c["check"]: c for c in json.loads(cli(mapped, "doctor", "--json").stdout)}
        assert (
            fixed["review field"]["ok"]
            and "Legal Hold -> no decision" in fixed["review field"]["detail"]
        )
        elsewhere = {**env, "POSTFLOW_REVIEW_FIELD": "Approval"}
        missing = {c["check"]: c for c in json.loads(cli(elsewhere, "doctor", "--json").stdout)}
        assert not missing["review field"]["ok"]
        assert "no metadata field 'Approval'" in missing["review field"]["detail"]
        assert fake.client_secret not in done.stdout + done.stderr


def test_doctor_shows_the_mapping_without_the_frameio_api(tmp_path: Path) -> None:
    """Without API credentials doctor shows the configured mapping and says it was not checked."""
    done = cli(cli_env(tmp_path), "doctor", "--json")
    line = {c["check"]: c for c in json.loads(done.stdout)}["review field"]
    assert line["ok"] and "'Status' mapped as: Needs Review -> WAITING_APPROVAL" in line["detail"]
    assert "not checked" in line["detail"]


def test_doctor_checks_every_routes_discord_webhook(tmp_path: Path) -> None:
    """doctor asks each destination's webhook; a deleted route's is named, its token never shown."""
    with (
        FakeDiscord(webhook_id="400000000000000001") as main,
        FakeDiscord(webhook_id="400000000000000002") as film,
    ):
        film.delete_webhook()
        routes = json.dumps([{"project": "Feature Film", "webhook_url": film.webhook_url}])
        env = cli_env(
            tmp_path, POSTFLOW_DISCORD_WEBHOOK_URL=main.webhook_url, POSTFLOW_DISCORD_ROUTES=routes
        )
        done = cli(env, "doctor", "--json")
    line = {c["check"]: c for c in json.loads(done.stdout)}["discord"]
    assert not line["ok"]
    assert line["detail"].startswith(
        "discord webhook …/0001 answers; route 'Feature Film': discord webhook …/0002 answered 404"
    )
    assert main.token not in done.stdout and film.token not in done.stdout
