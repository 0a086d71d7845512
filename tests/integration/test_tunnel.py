"""The cloudflared adapter against the fake cloudflared executable, one test per scenario."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from postflow_webhooks.adapters.cloudflared import (
    CloudflaredConfig,
    CloudflaredExitedError,
    CloudflaredTunnel,
    InvalidTunnelTokenError,
    MetricsPortInUseError,
    RestartPolicy,
    TunnelNeverReadyError,
    TunnelRateLimitedError,
    restart_retrying,
)
from tests.fakes.cloudflared_helpers import (
    FAST_RESTARTS,
    Waits,
    eventually,
    fake_config,
    log_text,
    make_token,
    process_gone,
    starts,
)

pytestmark = [pytest.mark.anyio, pytest.mark.slow, pytest.mark.timeout(60)]


def tunnel_for(config: CloudflaredConfig, waits: Waits | None = None) -> CloudflaredTunnel:
    """A tunnel whose backoff sleeps are recorded, never slept."""
    return CloudflaredTunnel(
        config, retrying=restart_retrying(config.restart, sleep=waits or Waits())
    )


class Heard:
    """A URL subscriber that remembers what it heard."""

    def __init__(self) -> None:
        self.urls: list[str] = []

    async def __call__(self, url: str) -> None:
        """Remember the URL."""
        self.urls.append(url)


async def test_success_is_ready_with_the_quicktunnel_url(tmp_path: Path) -> None:
    """a quick tunnel starts, is ready, and publishes the hostname /quicktunnel reports."""
    config = fake_config(tmp_path)
    tunnel, heard = tunnel_for(config), Heard()
    tunnel.subscribe(heard)
    await tunnel.start()
    try:
        info = tunnel.info()
        record = starts(tmp_path)[0]
        assert info.ready and info.state == "ready" and info.mode == "quick"
        assert info.public_url == f"https://{record['hostname']}"
        assert heard.urls == [info.public_url]
        assert info.restarts == 0 and info.since is not None
    finally:
        await tunnel.stop()
    assert tunnel.info().state == "stopped" and not tunnel.info().ready


async def test_stop_leaves_no_process_and_no_zombie(tmp_path: Path) -> None:
    """stop sends SIGTERM and reaps cloudflared: its pid is gone, not a zombie."""
    tunnel = tunnel_for(fake_config(tmp_path))
    await tunnel.start()
    pid = tunnel.pid
    assert pid is not None and not process_gone(pid)
    await tunnel.stop()
    assert process_gone(pid)
    assert "Initiating graceful shutdown due to signal terminated" in log_text(config_log(tmp_path))


def config_log(tmp_path: Path) -> Path:
    """Where fake_config puts the tunnel log."""
    return tmp_path / "logs" / "webhook_tunnel.log"


async def test_a_stubborn_cloudflared_is_killed_after_the_grace_period(tmp_path: Path) -> None:
    """a cloudflared that ignores SIGTERM is SIGKILLed after the grace period and reaped."""
    config = fake_config(tmp_path, scenario="stubborn", grace_period=0.5, kill_margin=0.2)
    tunnel = tunnel_for(config)
    await tunnel.start()
    pid = tunnel.pid
    assert pid is not None
    started = time.monotonic()
    await tunnel.stop()
    assert 0.6 <= time.monotonic() - started < 5
    assert process_gone(pid)
    assert "sending SIGKILL" in log_text(config_log(tmp_path))


async def test_slow_start_waits_for_registration(tmp_path: Path) -> None:
    """a slow banner delays readiness; start returns only once a connection is registered."""
    config = fake_config(tmp_path, scenario="slow_start", fake_env={"FAKE_CLOUDFLARED_DELAY": "1"})
    tunnel = tunnel_for(config)
    started = time.monotonic()
    await tunnel.start()
    try:
        assert time.monotonic() - started >= 1.0
        assert tunnel.info().ready and tunnel.info().public_url
    finally:
        await tunnel.stop()


async def test_api_unreachable_exits_1_and_fails_after_max_failures(tmp_path: Path) -> None:
    """exit 1 at start-up is retried with backoff, then reported failed with the last line."""
    waits = Waits()
    config = fake_config(tmp_path, scenario="api_unreachable", restart=FAST_RESTARTS)
    tunnel = tunnel_for(config, waits)
    with pytest.raises(CloudflaredExitedError) as caught:
        await tunnel.start()
    assert caught.value.returncode == 1
    assert "lookup api.trycloudflare.com: no such host" in str(caught.value)
    assert waits.waits == [0.1, 0.2]
    assert len(starts(tmp_path)) == 3
    info = tunnel.info()
    assert info.state == "failed" and not info.ready and "no such host" in (info.last_error or "")


async def test_rate_limited_backs_off_for_minutes(tmp_path: Path) -> None:
    """a 1015/429 answer waits rate_limit_wait (minutes) before the next attempt."""
    waits = Waits()
    policy = RestartPolicy(initial=0.1, jitter=0.0, rate_limit_wait=300.0, max_failures=2)
    tunnel = tunnel_for(fake_config(tmp_path, scenario="rate_limited", restart=policy), waits)
    with pytest.raises(TunnelRateLimitedError):
        await tunnel.start()
    assert waits.waits == [300.0]
    assert "rate-limited" in (tunnel.info().last_error or "")


async def test_rate_limited_then_success_recovers(tmp_path: Path) -> None:
    """after a rate-limited first start, the second start succeeds and start returns ready."""
    waits = Waits()
    config = fake_config(
        tmp_path,
        scenario="success",
        fake_env={"FAKE_CLOUDFLARED_SCENARIO_1": "rate_limited"},
    )
    tunnel = tunnel_for(config, waits)
    await tunnel.start()
    try:
        assert waits.waits == [300.0]
        assert tunnel.info().ready and tunnel.info().restarts == 1
    finally:
        await tunnel.stop()


async def test_crash_restarts_with_a_new_url_that_subscribers_hear(tmp_path: Path) -> None:
    """a crash after N seconds restarts cloudflared and subscribers hear the new URL."""
    waits = Waits()
    config = fake_config(
        tmp_path,
        scenario="success",
        fake_env={
            "FAKE_CLOUDFLARED_SCENARIO_1": "crash_after",
            "FAKE_CLOUDFLARED_CRASH_AFTER": "0.5",
        },
    )
    tunnel, heard = tunnel_for(config, waits), Heard()
    tunnel.subscribe(heard)
    await tunnel.start()
    try:
        first = tunnel.info().public_url
        await eventually(lambda: len(heard.urls) == 2)
        await eventually(lambda: tunnel.info().ready)
        info = tunnel.info()
        assert heard.urls[0] == first and heard.urls[1] != first
        assert info.public_url == heard.urls[1] and info.restarts == 1
        assert waits.waits == [0.1]
        assert "exited with code 2" in log_text(config_log(tmp_path))
    finally:
        await tunnel.stop()
    assert all(process_gone(int(r["pid"])) for r in starts(tmp_path))


async def test_repeated_crashes_end_in_the_failed_state(tmp_path: Path) -> None:
    """after max_failures consecutive crashes the tunnel is reported failed, no process left."""
    waits = Waits()
    policy = RestartPolicy(initial=0.1, jitter=0.0, max_failures=2)
    config = fake_config(
        tmp_path,
        scenario="crash_after",
        restart=policy,
        fake_env={"FAKE_CLOUDFLARED_CRASH_AFTER": "0.3"},
    )
    tunnel = tunnel_for(config, waits)
    await tunnel.start()
    try:
        await eventually(lambda: tunnel.info().state == "failed")
        assert waits.waits == [0.1]
        assert "exited with code 2" in (tunnel.info().last_error or "")
        assert all(process_gone(int(r["pid"])) for r in starts(tmp_path))
    finally:
        await tunnel.stop()
    assert tunnel.info().state == "failed"


async def test_edge_unreachable_forever_is_a_never_ready_error(tmp_path: Path) -> None:
    """a URL printed but no registered connection within the timeout is a never-ready error."""
    policy = RestartPolicy(max_failures=1)
    config = fake_config(
        tmp_path,
        scenario="edge_unreachable",
        ready_timeout=1.0,
        restart=policy,
        fake_env={"FAKE_CLOUDFLARED_RETRY_INTERVAL": "0.1"},
    )
    tunnel = tunnel_for(config)
    with pytest.raises(TunnelNeverReadyError) as caught:
        await tunnel.start()
    assert "7844" in str(caught.value) and "Unable to establish connection" in str(caught.value)
    assert tunnel.info().state == "failed" and tunnel.info().public_url is None
    assert process_gone(int(starts(tmp_path)[0]["pid"]))


async def test_invalid_token_fails_at_once_without_retry(tmp_path: Path) -> None:
    """exit 255 with an invalid token raises InvalidTunnelTokenError and is never retried."""
    waits = Waits()
    config = fake_config(
        tmp_path,
        scenario="invalid_token",
        mode="named",
        token=make_token(),
        hostname="hooks.example.com",
    )
    tunnel = tunnel_for(config, waits)
    with pytest.raises(InvalidTunnelTokenError):
        await tunnel.start()
    assert waits.waits == [] and len(starts(tmp_path)) == 1


async def test_named_mode_passes_the_token_by_environment_only(tmp_path: Path) -> None:
    """the named tunnel's token reaches cloudflared through TUNNEL_TOKEN, never argv or logs."""
    token = make_token()
    config = fake_config(tmp_path, mode="named", token=token, hostname="hooks.example.com")
    tunnel, heard = tunnel_for(config), Heard()
    tunnel.subscribe(heard)
    await tunnel.start()
    try:
        record = starts(tmp_path)[0]
        assert record["argv"][-1] == "run" and token not in " ".join(record["argv"])
        assert record["token_from_env"] == token
        assert heard.urls == ["https://hooks.example.com"]
        assert tunnel.info().mode == "named"
    finally:
        await tunnel.stop()
    assert token not in log_text(config_log(tmp_path))
    assert token not in repr(config)


async def test_named_mode_with_a_token_file(tmp_path: Path) -> None:
    """a token file is passed as --token-file after run; the token itself is not on argv."""
    token = make_token()
    token_file = tmp_path / "tunnel.token"
    token_file.write_text(token)
    config = fake_config(
        tmp_path, mode="named", token_file=token_file, hostname="hooks.example.com"
    )
    tunnel = tunnel_for(config)
    await tunnel.start()
    try:
        record = starts(tmp_path)[0]
        assert record["argv"][-3:] == ["run", "--token-file", str(token_file)]
        assert record["token_from_env"] is None and record["token_seen"] == token
    finally:
        await tunnel.stop()


async def test_ten_megabytes_of_output_are_drained_without_blocking(tmp_path: Path) -> None:
    """a chatty cloudflared (10 MB before registering) never blocks on a full pipe."""
    config = fake_config(tmp_path, scenario="chatty", ready_timeout=30.0)
    tunnel = tunnel_for(config)
    await tunnel.start()
    try:
        assert tunnel.info().ready
        logs = tmp_path / "logs"
        total = sum(p.stat().st_size for p in logs.iterdir())
        assert total >= 10_000_000 or len(list(logs.iterdir())) == 1 + config.log_backups
    finally:
        await tunnel.stop()


async def test_dropped_connection_keeps_the_hostname_and_is_not_a_restart(tmp_path: Path) -> None:
    """an edge drop inside a live process flips ready off then on, same URL, no restart."""
    config = fake_config(
        tmp_path,
        scenario="drop_connection",
        fake_env={"FAKE_CLOUDFLARED_DROP_AFTER": "0.3", "FAKE_CLOUDFLARED_DROP_FOR": "1.0"},
    )
    tunnel, heard = tunnel_for(config), Heard()
    tunnel.subscribe(heard)
    await tunnel.start()
    try:
        url = tunnel.info().public_url
        await eventually(lambda: tunnel.info().state == "reconnecting")
        assert not tunnel.info().ready
        await eventually(lambda: tunnel.info().state == "ready")
        info = tunnel.info()
        assert info.ready and info.public_url == url and info.restarts == 0
        assert heard.urls == [url] and len(starts(tmp_path)) == 1
    finally:
        await tunnel.stop()


async def test_metrics_port_taken_is_refused_before_spawning(tmp_path: Path) -> None:
    """a metrics port already in use raises MetricsPortInUseError naming the address."""
    import socket

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        tunnel = tunnel_for(fake_config(tmp_path, metrics_port=port))
        with pytest.raises(MetricsPortInUseError) as caught:
            await tunnel.start()
    assert f"127.0.0.1:{port}" in str(caught.value)
    assert starts(tmp_path) == []


async def test_an_old_cloudflared_falls_back_to_the_banner_url(tmp_path: Path) -> None:
    """without /quicktunnel (old version) the URL comes from the banner's box row."""
    config = fake_config(tmp_path, fake_env={"FAKE_CLOUDFLARED_VERSION": "2021.9.0"})
    tunnel = tunnel_for(config)
    await tunnel.start()
    try:
        assert tunnel.info().public_url == f"https://{starts(tmp_path)[0]['hostname']}"
        assert "/quicktunnel is missing" in log_text(config_log(tmp_path))
    finally:
        await tunnel.stop()


async def test_log_file_keeps_cloudflared_lines_verbatim(tmp_path: Path) -> None:
    """the tunnel log holds cloudflared's own lines unchanged plus our tagged lifecycle lines."""
    tunnel = tunnel_for(fake_config(tmp_path))
    await tunnel.start()
    url = tunnel.info().public_url or ""
    await tunnel.stop()
    lines = log_text(config_log(tmp_path)).splitlines()
    box_rows = [line for line in lines if line.endswith("|") and url in line]
    assert len(box_rows) == 1
    assert box_rows[0].split(" INF ", 1)[1] == "|  " + url.ljust(88) + "  |"
    assert any(" INF Registered tunnel connection connIndex=0 " in line for line in lines)
    assert any("[postflow] tunnel ready: " + url in line for line in lines)
    assert any("[postflow] tunnel stopped" in line for line in lines)


async def test_log_file_rotates(tmp_path: Path) -> None:
    """a chatty cloudflared rotates the log, keeping at most log_backups old files."""
    config = fake_config(
        tmp_path,
        scenario="chatty",
        log_max_bytes=100_000,
        log_backups=2,
        fake_env={"FAKE_CLOUDFLARED_CHATTY_BYTES": "1000000"},
    )
    tunnel = tunnel_for(config)
    await tunnel.start()
    await tunnel.stop()
    names = sorted(p.name for p in (tmp_path / "logs").iterdir())
    assert names == ["webhook_tunnel.log", "webhook_tunnel.log.1", "webhook_tunnel.log.2"]
    for path in (tmp_path / "logs").iterdir():
        assert path.stat().st_size <= 100_000


async def test_subscriber_failure_does_not_break_the_tunnel(tmp_path: Path) -> None:
    """a listener that raises is logged; the tunnel stays ready and other listeners still hear."""

    async def broken(url: str) -> None:
        raise RuntimeError("frame.io is down")

    tunnel, heard = tunnel_for(fake_config(tmp_path)), Heard()
    tunnel.subscribe(broken)
    tunnel.subscribe(heard)
    await tunnel.start()
    try:
        assert tunnel.info().ready and len(heard.urls) == 1
        assert "a URL listener failed" in log_text(config_log(tmp_path))
    finally:
        await tunnel.stop()


async def test_a_crash_after_a_stable_run_restarts_at_once_with_fresh_backoff(
    tmp_path: Path,
) -> None:
    """a process that was ready for stable_after does not count towards max_failures."""
    waits = Waits()
    policy = RestartPolicy(initial=0.1, jitter=0.0, max_failures=1, stable_after=0.1)
    config = fake_config(
        tmp_path,
        restart=policy,
        fake_env={
            "FAKE_CLOUDFLARED_SCENARIO_1": "crash_after",
            "FAKE_CLOUDFLARED_CRASH_AFTER": "0.5",
        },
    )
    tunnel, heard = tunnel_for(config, waits), Heard()
    tunnel.subscribe(heard)
    await tunnel.start()
    try:
        await eventually(lambda: len(heard.urls) == 2)
        assert tunnel.info().state == "ready" and tunnel.info().restarts == 1
        assert waits.waits == []
        assert "exited with code 2" in (tunnel.info().last_error or "")
    finally:
        await tunnel.stop()
