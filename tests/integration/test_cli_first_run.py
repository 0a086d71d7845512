"""What a new user hits from a fresh clone, run as the real command in a subprocess (issue 14)."""

from __future__ import annotations

import json
import re
import socket
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fakes.cloudflared_helpers import FAKE_CLOUDFLARED
from tests.fakes.fake_discord import FakeDiscord
from tests.support import POSTFLOW_COMMAND, command_env, free_port, wait_for
from tests.support import start_serve as serve_on

pytestmark = pytest.mark.slow
SECRET = "first-run-secret"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def env_for(tmp_path: Path, **extra: str) -> dict[str, str]:
    """An environment with nothing from the developer's own settings; data under tmp_path."""
    return command_env(
        tmp_path / "config",
        POSTFLOW_DATA_DIR=str(tmp_path / "data"),
        POSTFLOW_LOG_DIR=str(tmp_path / "logs"),
        **extra,
    )


def cli(
    env: dict[str, str], *args: str, cwd: Path | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``postflow-webhooks ARGS``."""
    return subprocess.run(
        [POSTFLOW_COMMAND, *args],
        env=env,
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


def stop(process: subprocess.Popen[str]) -> str:
    """Stop a background ``serve``; what it said on stderr (empty when it went to a file)."""
    process.terminate()
    _, err = process.communicate(timeout=30)
    return err or ""


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A running ``serve`` that requires signatures; yields its environment."""
    tmp = tmp_path_factory.mktemp("signed")
    env = env_for(tmp, POSTFLOW_PORT=str(free_port()), POSTFLOW_WEBHOOK_SECRET=SECRET)
    process = serve_on(env, int(env["POSTFLOW_PORT"]))
    yield env
    stop(process)


# -- 1. a named tunnel without its token ----------------------------------------------------


def test_a_named_tunnel_without_a_token_is_refused_naming_the_variable(tmp_path: Path) -> None:
    """serve, tunnel --mode named and doctor name TUNNEL_TOKEN; exit 1, no traceback."""
    env = env_for(
        tmp_path,
        POSTFLOW_TUNNEL="named",
        POSTFLOW_TUNNEL_HOSTNAME="hooks.example.com",
        POSTFLOW_WEBHOOK_SECRET=SECRET,
        POSTFLOW_CLOUDFLARED=str(FAKE_CLOUDFLARED),
    )
    served = cli(env, "serve", "--port", str(free_port()))
    tunnel = cli(env, "tunnel", "--mode", "named", "--port", str(free_port()))
    doctor = cli(env, "doctor", "--json")
    for done in (served, tunnel):
        assert done.returncode == 1, done.stderr
        assert "TUNNEL_TOKEN" in done.stderr and "Traceback" not in done.stderr
    line = {c["check"]: c for c in json.loads(doctor.stdout)}["cloudflared"]
    assert not line["ok"] and "TUNNEL_TOKEN" in line["detail"]
    assert doctor.returncode == 1


def test_a_named_tunnel_without_a_hostname_is_refused_naming_the_variable(tmp_path: Path) -> None:
    """serve with a token but no hostname names POSTFLOW_TUNNEL_HOSTNAME; exit 1."""
    env = env_for(
        tmp_path,
        POSTFLOW_TUNNEL="named",
        TUNNEL_TOKEN="token",
        POSTFLOW_WEBHOOK_SECRET=SECRET,
        POSTFLOW_CLOUDFLARED=str(FAKE_CLOUDFLARED),
    )
    done = cli(env, "serve", "--port", str(free_port()))
    assert done.returncode == 1
    assert "POSTFLOW_TUNNEL_HOSTNAME" in done.stderr and "Traceback" not in done.stderr


# -- 2. replay ----------------------------------------------------------------------------------


def test_replay_on_a_mistyped_data_directory_creates_nothing_and_says_so(tmp_path: Path) -> None:
    """``replay --data-dir <typo>`` exits 1 naming --data-dir, and leaves no directory behind."""
    typo = tmp_path / "dtaa"
    done = cli(env_for(tmp_path), "replay", "--data-dir", str(typo))
    assert done.returncode == 1
    assert str(typo) in done.stderr and "--data-dir" in done.stderr
    assert not typo.exists()


def test_replay_on_a_damaged_database_names_it_without_a_traceback(tmp_path: Path) -> None:
    """A database file that is not one: exit 1, the file named, no traceback."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "postflow.sqlite3").write_bytes(b"not a database " * 100)
    done = cli(env_for(tmp_path), "replay")
    assert done.returncode == 1
    assert "postflow.sqlite3" in done.stderr and "Traceback" not in done.stderr


def test_replay_of_an_unknown_delivery_exits_1_naming_it(signed: dict[str, str]) -> None:
    """``replay --delivery 999`` (no such quarantined delivery) exits 1 naming 999."""
    done = cli(signed, "replay", "--delivery", "999999", "--notification", "888888")
    assert done.returncode == 1
    assert "999999" in done.stderr and "--delivery" in done.stderr
    assert "888888" in done.stderr and "--notification" in done.stderr


def test_replay_with_a_data_directory_that_is_a_file_says_so(tmp_path: Path) -> None:
    """``--data-dir`` naming a file: 'is a file', not 'File exists'."""
    afile = tmp_path / "afile"
    afile.write_text("x", encoding="utf-8")
    done = cli(env_for(tmp_path), "replay", "--data-dir", str(afile))
    assert done.returncode == 1
    assert "is a file" in done.stderr and "File exists" not in done.stderr


# -- 3. simulate -------------------------------------------------------------------------------


def test_simulate_with_a_wrong_secret_names_the_reason_and_the_fix(
    signed: dict[str, str],
) -> None:
    """A wrong secret: exit 1 with bad_signature and POSTFLOW_WEBHOOK_SECRET; none: the same."""
    wrong = cli({**signed, "POSTFLOW_WEBHOOK_SECRET": "not-it"}, "simulate")
    assert wrong.returncode == 1
    assert "401 bad_signature" in wrong.stderr and "POSTFLOW_WEBHOOK_SECRET" in wrong.stderr
    unsigned = {k: v for k, v in signed.items() if k != "POSTFLOW_WEBHOOK_SECRET"}
    missing = cli(unsigned, "simulate")
    assert missing.returncode == 1
    assert "401 missing_signature" in missing.stderr
    assert "POSTFLOW_WEBHOOK_SECRET" in missing.stderr


def test_simulate_writes_no_carriage_returns_into_a_pipe(signed: dict[str, str]) -> None:
    """Progress is redrawn only on a terminal: piped output has no carriage return."""
    done = subprocess.run(  # bytes: text mode would turn a carriage return into a newline
        [POSTFLOW_COMMAND, "simulate", "--files", "2"],
        env=signed,
        capture_output=True,
        timeout=90,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert b"\r" not in done.stdout + done.stderr
    assert done.stderr.startswith(b"sent 10/10\n")


def test_simulate_waits_for_its_own_files_and_says_why_they_wait(tmp_path: Path) -> None:
    """Another file stuck waiting for Frame.io does not hold simulate; its own stuck ones say why."""
    dead = free_port()  # nothing listens: Frame.io and Adobe IMS cannot be reached
    env = env_for(
        tmp_path,
        POSTFLOW_PORT=str(free_port()),
        POSTFLOW_FRAMEIO_CLIENT_ID="id",
        POSTFLOW_FRAMEIO_CLIENT_SECRET="secret",
        POSTFLOW_FRAMEIO_ACCOUNT_ID="acct",
        POSTFLOW_FRAMEIO_WORKSPACE_ID="ws",
        POSTFLOW_FRAMEIO_API_BASE=f"http://127.0.0.1:{dead}",
        POSTFLOW_FRAMEIO_IMS_TOKEN_URL=f"http://127.0.0.1:{dead}/ims/token/v3",
    )
    process = serve_on(env, int(env["POSTFLOW_PORT"]))
    url = f"http://127.0.0.1:{env['POSTFLOW_PORT']}"
    try:
        stuck = {"type": "file.ready", "resource": {"id": "stuck-1", "type": "file"}}
        assert httpx.post(f"{url}/frameio-webhook", json=stuck).status_code == 202
        wait_for(lambda: httpx.get(f"{url}/health").json()["deferred"]["count"] >= 1)
        mine = cli(env, "simulate", "--timeout", "20")
        theirs = cli(env, "simulate", "--dialect", "v4", "--timeout", "2")
        backlog = httpx.get(f"{url}/health").json()["backlog"]
    finally:
        stop(process)
    assert backlog >= 1
    assert mine.returncode == 0, mine.stderr
    assert "APPROVED ✅" in mine.stdout
    assert theirs.returncode == 1
    assert "waiting for the receiver to apply the deliveries of 1 file(s)" in theirs.stderr
    assert "after 2 s (--timeout)" in theirs.stderr
    assert "Adobe IMS cannot be reached" in theirs.stderr


# -- 4. wording -----------------------------------------------------------------------------------


def test_the_tunnel_refusal_names_the_secrets_variable(tmp_path: Path) -> None:
    """No secret: serve --tunnel quick and tunnel name POSTFLOW_WEBHOOK_SECRET."""
    env = env_for(tmp_path, POSTFLOW_CLOUDFLARED=str(FAKE_CLOUDFLARED))
    for args in (["serve", "--tunnel", "quick"], ["tunnel"]):
        done = cli(env, *args, "--port", str(free_port()))
        assert done.returncode == 1
        assert "POSTFLOW_WEBHOOK_SECRET" in done.stderr and "webhook_secret" in done.stderr


def test_a_taken_port_is_refused_before_any_banner(tmp_path: Path) -> None:
    """The port-taken message is not preceded by a banner saying it is receiving."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        done = cli(env_for(tmp_path), "serve", "--port", str(busy.getsockname()[1]))
    assert done.returncode == 1 and "--port" in done.stderr
    assert "Receiver:" not in done.stderr and "Webhook URL:" not in done.stderr


def test_invalid_json_in_a_config_file_gives_the_reason(tmp_path: Path) -> None:
    """Not only the line and column: what is wrong there."""
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "receiver.json").write_text('{"port": 8080,}', encoding="utf-8")
    done = cli(env_for(tmp_path), "serve")
    assert done.returncode == 1
    assert "receiver.json" in done.stderr
    assert "Illegal trailing comma" in done.stderr or "Expecting" in done.stderr


# -- 5. doctor ------------------------------------------------------------------------------------


def test_doctor_on_the_documented_default_warns_exits_0_and_creates_nothing(
    tmp_path: Path,
) -> None:
    """No secret, tunnel off, nothing configured: a warning, exit 0, no ./data made."""
    env = command_env(tmp_path / "config")
    done = cli(env, "doctor", "--port", str(free_port()), cwd=tmp_path)
    assert done.returncode == 0, done.stdout
    assert "[warn] signing secret: not set" in done.stdout
    assert "POSTFLOW_WEBHOOK_SECRET" in done.stdout
    assert not (tmp_path / "data").exists()
    assert "does not exist yet" in done.stdout
    assert "receiver.example.json" in done.stdout


def test_doctor_writes_to_the_data_directory_to_say_it_is_writable(tmp_path: Path) -> None:
    """The data-directory line is a real write (and leaves nothing behind)."""
    (tmp_path / "data").mkdir()
    done = cli(env_for(tmp_path), "doctor", "--json", "--port", str(free_port()))
    line = {c["check"]: c for c in json.loads(done.stdout)}["data directory"]
    assert line["ok"] and "a test file was written and removed" in line["detail"]
    assert list((tmp_path / "data").iterdir()) == []


def test_doctor_goes_on_after_a_bad_config_file(tmp_path: Path) -> None:
    """A broken receiver.json is one FIX line; every other check still runs."""
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "receiver.json").write_text('{"port": }', encoding="utf-8")
    done = cli(env_for(tmp_path), "doctor", "--json", "--port", str(free_port()))
    assert done.returncode == 1
    checks = {c["check"]: c for c in json.loads(done.stdout)}
    assert (
        not checks["configuration"]["ok"] and "receiver.json" in checks["configuration"]["detail"]
    )
    for name in ("signing secret", "data directory", "port", "cloudflared", "discord", "frameio"):
        assert name in checks


def test_doctor_counts_the_secret_register_stored(tmp_path: Path) -> None:
    """With the API configured, the secret in data/frameio_webhook_secret is in force: ok."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "frameio_webhook_secret").write_text("from-register", encoding="utf-8")
    env = env_for(
        tmp_path,
        POSTFLOW_FRAMEIO_CLIENT_ID="id",
        POSTFLOW_FRAMEIO_CLIENT_SECRET="secret",
        POSTFLOW_FRAMEIO_ACCOUNT_ID="acct",
        POSTFLOW_FRAMEIO_WORKSPACE_ID="ws",
        POSTFLOW_FRAMEIO_IMS_TOKEN_URL=f"http://127.0.0.1:{free_port()}/token",
    )
    done = cli(env, "doctor", "--json", "--port", str(free_port()))
    line = {c["check"]: c for c in json.loads(done.stdout)}["signing secret"]
    assert line["ok"] and not line["warning"] and "stored in" in line["detail"]


def test_doctor_takes_port_data_and_config_flags(tmp_path: Path) -> None:
    """--port, --data-dir and --config-dir decide what doctor looks at."""
    config = tmp_path / "elsewhere"
    config.mkdir()
    (config / "receiver.json").write_text('{"host": "127.0.0.1"}', encoding="utf-8")
    port = free_port()
    done = cli(
        command_env(tmp_path / "config"),
        "doctor",
        "--json",
        "--port",
        str(port),
        "--data-dir",
        str(tmp_path / "mine"),
        "--config-dir",
        str(config),
        cwd=tmp_path,
    )
    checks = {c["check"]: c for c in json.loads(done.stdout)}
    assert f"read receiver.json in {config}" in checks["configuration"]["detail"]
    assert str(tmp_path / "mine") in checks["data directory"]["detail"]
    assert checks["port"]["detail"].startswith(f"{port} on 127.0.0.1")


# -- 6. an unknown status -----------------------------------------------------------------------


def test_an_unknown_status_is_warned_about_and_listed(
    signed: dict[str, str], tmp_path: Path
) -> None:
    """``"status": "weird"`` is applied as no change, and /webhook-status lists the word."""
    payload = tmp_path / "weird.json"
    payload.write_text(
        json.dumps(
            {
                "event_type": "file.status.changed",
                "resource": {"id": "weird-1", "name": "w.mov", "status": "weird"},
            }
        ),
        encoding="utf-8",
    )
    sent = cli(signed, "send", str(payload))
    assert sent.returncode == 0, sent.stderr
    url = f"http://127.0.0.1:{signed['POSTFLOW_PORT']}"
    wait_for(lambda: httpx.get(f"{url}/webhook-status").json()["unknown_statuses_seen"])
    assert httpx.get(f"{url}/webhook-status").json()["unknown_statuses_seen"] == ["weird"]


# -- send, tables, help ---------------------------------------------------------------------


def test_send_posts_the_guides_payloads_signed_and_prints_the_answers(
    signed: dict[str, str],
) -> None:
    """The user guide's two curl examples, through ``send``: 202 each, the file ends APPROVED."""
    files = [EXAMPLES / "file.upload.completed.json", EXAMPLES / "review.status.changed.json"]
    done = cli(signed, "send", *map(str, files))
    assert done.returncode == 0, done.stderr
    assert done.stdout.count(': 202 {"accepted": true') == 2
    url = f"http://127.0.0.1:{signed['POSTFLOW_PORT']}"
    wait_for(lambda: httpx.get(f"{url}/uploads/file_id").json().get("status") == "APPROVED")
    refused = cli({**signed, "POSTFLOW_WEBHOOK_SECRET": "nope"}, "send", "-", stdin="{}")
    assert refused.returncode == 1 and '"reason": "bad_signature"' in refused.stdout
    assert "POSTFLOW_WEBHOOK_SECRET" in refused.stderr


def test_uploads_aligns_emoji_labels_and_shows_short_times(signed: dict[str, str]) -> None:
    """Each column starts at the same display column whatever the emoji; times are short."""
    assert cli(signed, "simulate", "--files", "1", "--dialect", "v4").returncode == 0
    assert cli(signed, "simulate", "--files", "1").returncode == 0
    listed = cli(signed, "uploads").stdout.splitlines()
    header, rows = listed[0], [line for line in listed[2:] if line.strip() and " of " not in line]
    from postflow_webhooks.app.cli.common import display_width

    change_at = display_width(header[: header.index("last change")])
    assert any("APPROVED ✅" in row for row in rows) and any("COMPLETED 🎉" in row for row in rows)
    for row in rows:
        when = re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d( |$)", row)
        assert when is not None, row
        assert display_width(row[: when.start()]) == change_at, row
        assert "+00:00" not in row


def test_top_level_help_shows_whole_summaries_and_tunnel_mode_is_explained(
    tmp_path: Path,
) -> None:
    """No summary is cut with '...'; ``tunnel --help`` says what each mode is."""
    env = env_for(tmp_path, COLUMNS="80")
    top = cli(env, "--help").stdout
    commands = top[top.index("Commands:") :]
    assert "..." not in commands and "send" in commands
    assert "replay the ones you name" in " ".join(top.split())
    mode = " ".join(cli(env, "tunnel", "--help").stdout.split())
    assert "quick: a random trycloudflare.com URL" in mode


def test_serve_and_tunnel_print_no_httpx_request_lines(tmp_path: Path) -> None:
    """httpx's INFO lines (Discord, cloudflared's metrics) stay out of the output."""
    with FakeDiscord() as discord:
        env = env_for(
            tmp_path,
            POSTFLOW_PORT=str(free_port()),
            POSTFLOW_WEBHOOK_SECRET=SECRET,
            POSTFLOW_DISCORD_WEBHOOK_URL=discord.webhook_url,
            POSTFLOW_CLOUDFLARED=str(FAKE_CLOUDFLARED),
            FAKE_CLOUDFLARED_STATE_DIR=str(tmp_path / "fake"),
        )
        log = tmp_path / "serve.log"
        process = serve_on(env, int(env["POSTFLOW_PORT"]), "--tunnel", "quick", log=log)
        try:
            assert cli(env, "simulate").returncode == 0
            wait_for(lambda: len(discord.messages) >= 4, timeout=20)
            wait_for(lambda: "webhook URL for Frame.io" in log.read_text(encoding="utf-8"))
        finally:
            stop(process)
    said = log.read_text(encoding="utf-8")
    assert "HTTP Request:" not in said
    assert "receiver stopped" in said


# -- JSON logs ------------------------------------------------------------------------------


def test_json_logs_are_one_object_per_line_with_named_fields(tmp_path: Path) -> None:
    """--log-format json: every stderr line is JSON; start-up says where the data is; fields named."""
    env = env_for(tmp_path, POSTFLOW_PORT=str(free_port()), POSTFLOW_WEBHOOK_SECRET=SECRET)
    log = tmp_path / "serve.log"
    process = serve_on(env, int(env["POSTFLOW_PORT"]), "--log-format", "json", log=log)
    try:
        assert cli(env, "simulate").returncode == 0
    finally:
        stop(process)
    lines = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    serving = next(line for line in lines if line.get("event") == "serving")
    assert serving["data_dir"] == str(tmp_path / "data") and serving["new_database"] is True
    started = next(line for line in lines if "tracked_files" in line)
    assert started["tracked_files"] == 0
    applied = [line for line in lines if line.get("outcome") == "status_changed"]
    assert len(applied) == 4
    for line in applied:
        assert {"delivery_id", "event_type", "file_id", "duration_ms"} <= set(line)
        assert line["file_id"].startswith("sim-") and isinstance(line["duration_ms"], float)


def test_json_logs_show_a_refused_start_as_json(tmp_path: Path) -> None:
    """Even a start refused for a bad setting is one JSON line on stderr."""
    done = cli(env_for(tmp_path, POSTFLOW_PORT="abc"), "serve", "--log-format", "json")
    assert done.returncode == 1
    (line,) = [json.loads(text) for text in done.stderr.splitlines()]
    assert line["level"] == "ERROR" and "POSTFLOW_PORT" in line["message"]


# -- the state directory -----------------------------------------------------------------


def test_the_state_directory_holds_data_logs_and_config(tmp_path: Path) -> None:
    """--state-dir: config read from STATE/config, data in STATE/data, from any working directory."""
    state = tmp_path / "state"
    (state / "config").mkdir(parents=True)
    port = free_port()
    (state / "config" / "receiver.json").write_text(json.dumps({"port": port}), encoding="utf-8")
    elsewhere = tmp_path / "somewhere-else"
    elsewhere.mkdir()
    env = command_env(tmp_path / "unused", POSTFLOW_WEBHOOK_SECRET=SECRET)
    del env["POSTFLOW_CONFIG_DIR"]
    process = subprocess.Popen(
        [POSTFLOW_COMMAND, "serve", "--state-dir", str(state)],
        env=env,
        cwd=elsewhere,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    try:
        wait_for(lambda: _answers(port) or process.poll() is not None, timeout=30)
        assert cli(env, "simulate", "--url", f"http://127.0.0.1:{port}").returncode == 0
    finally:
        err = stop(process)
    assert (state / "data" / "postflow.sqlite3").is_file()
    assert not (elsewhere / "data").exists()
    assert f"Data:         {state / 'data'} (new, empty" in err
    db = sqlite3.connect(state / "data" / "postflow.sqlite3")
    assert db.execute("SELECT count(*) FROM uploads").fetchone()[0] == 1
    db.close()


def test_serve_says_how_many_files_it_tracks(signed: dict[str, str], tmp_path: Path) -> None:
    """A second start on the same data directory names it and counts its files."""
    data = tmp_path / "data"
    env = {**signed, "POSTFLOW_DATA_DIR": str(data), "POSTFLOW_PORT": str(free_port())}
    first = serve_on(env, int(env["POSTFLOW_PORT"]))
    assert cli(env, "simulate", "--files", "2").returncode == 0
    stop(first)
    log = tmp_path / "again.log"
    second = serve_on(env, int(env["POSTFLOW_PORT"]), log=log)
    stop(second)
    err = log.read_text(encoding="utf-8")
    assert f"Data:         {data}\n" in err
    assert f"(data: {data}, 2 tracked file(s))" in err


def _answers(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code < 600
    except httpx.HTTPError:
        return False
