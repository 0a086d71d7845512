"""cloudflared's command line, environment, configuration, restart policy and checks."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest
import tenacity

from postflow_webhooks.adapters.cloudflared import (
    CloudflaredConfig,
    CloudflaredExitedError,
    CloudflaredNotInstalledError,
    CloudflaredTooOldError,
    InvalidTunnelTokenError,
    MetricsPortInUseError,
    PublicExposureRefusedError,
    RestartPolicy,
    TunnelNeverReadyError,
    TunnelRateLimitedError,
    check_cloudflared,
    public_exposure_allowed,
    require_public_exposure_allowed,
)
from postflow_webhooks.adapters.cloudflared.command import (
    build_argv,
    build_env,
    go_duration,
    metrics_port,
    resolve_executable,
)
from postflow_webhooks.adapters.cloudflared.errors import install_hint
from postflow_webhooks.adapters.cloudflared.supervisor import BackoffWait, is_transient
from postflow_webhooks.app.settings import SettingsError, load_settings
from postflow_webhooks.domain.errors import TunnelError
from tests.fakes.cloudflared_helpers import FAKE_CLOUDFLARED

TOKEN = "eyJhIjoiMCIsInQiOiIxIiwicyI6IjIifQ=="


def test_quick_argv_is_exactly_the_recommended_one() -> None:
    """a quick tunnel runs with every recommended flag, in order, to 127.0.0.1."""
    config = CloudflaredConfig(mode="quick", local_port=8080)
    assert build_argv(config, "/usr/bin/cloudflared", 20241) == [
        "/usr/bin/cloudflared", "tunnel", "--no-autoupdate", "--metrics", "127.0.0.1:20241",
        "--loglevel", "info", "--protocol", "http2", "--grace-period", "10s",
        "--url", "http://127.0.0.1:8080",
    ]  # fmt: skip


def test_named_argv_ends_with_run_and_never_holds_the_token() -> None:
    """a named tunnel puts its flags before run, and its token only in TUNNEL_TOKEN."""
    config = CloudflaredConfig(mode="named", local_port=8080, token=TOKEN, protocol="quic")
    argv = build_argv(config, "cloudflared", 1234)
    assert argv[-1] == "run" and "--url" not in argv and TOKEN not in " ".join(argv)
    assert argv[argv.index("--protocol") + 1] == "quic"
    assert build_env(config, {"PATH": "/bin"}) == {"PATH": "/bin", "TUNNEL_TOKEN": TOKEN}


def test_named_argv_with_a_token_file() -> None:
    """a token file goes after run as --token-file; no TUNNEL_TOKEN is set."""
    config = CloudflaredConfig(mode="named", local_port=8080, token_file=Path("/run/t.token"))
    assert build_argv(config, "cloudflared", 1)[-3:] == ["run", "--token-file", "/run/t.token"]
    assert "TUNNEL_TOKEN" not in build_env(config, {"TUNNEL_TOKEN": "stale"})


def test_quick_mode_drops_an_inherited_token() -> None:
    """a quick tunnel never inherits TUNNEL_TOKEN from our environment."""
    config = CloudflaredConfig(mode="quick", local_port=8080, extra_env={"A": "1"})
    assert build_env(config, {"TUNNEL_TOKEN": "x", "B": "2"}) == {"A": "1", "B": "2"}


@pytest.mark.parametrize(
    ("seconds", "text"), [(10, "10s"), (0.5, "500ms"), (90, "1m30s"), (180, "3m"), (1.25, "1250ms")]
)
def test_grace_period_as_go_duration(seconds: float, text: str) -> None:
    """grace periods are written as Go durations."""
    assert go_duration(seconds) == text


def test_config_refuses_what_cloudflared_would_refuse() -> None:
    """a grace period over 3m, localhost, or a named tunnel without token are refused early."""
    with pytest.raises(ValueError, match="3m"):
        CloudflaredConfig(mode="quick", local_port=1, grace_period=181)
    with pytest.raises(ValueError, match=r"127\.0\.0\.1"):
        CloudflaredConfig(mode="quick", local_port=1, local_host="localhost")
    with pytest.raises(ValueError, match="TUNNEL_TOKEN"):
        CloudflaredConfig(mode="named", local_port=1)
    with pytest.raises(ValueError):
        CloudflaredConfig(mode="fast", local_port=1)  # type: ignore[arg-type]


def test_repr_hides_the_token() -> None:
    """the token is not in the config's repr."""
    config = CloudflaredConfig(mode="named", local_port=8080, token=TOKEN)
    assert TOKEN not in repr(config)


def config_from(environ: dict[str, str], tmp_path: Path, port: int) -> CloudflaredConfig | None:
    """The tunnel config the composition root builds from these variables."""
    env = {"POSTFLOW_CONFIG_DIR": str(tmp_path), **environ}
    return CloudflaredConfig.from_settings(load_settings(env, {"port": port}))


def test_config_from_settings(tmp_path: Path) -> None:
    """POSTFLOW_TUNNEL, POSTFLOW_CLOUDFLARED and TUNNEL_TOKEN build the config; off gives None."""
    assert config_from({}, tmp_path, 8080) is None
    environ = {
        "POSTFLOW_TUNNEL": "named",
        "POSTFLOW_CLOUDFLARED": "/opt/cloudflared",
        "TUNNEL_TOKEN": TOKEN,
        "POSTFLOW_TUNNEL_HOSTNAME": "hooks.example.com",
        "POSTFLOW_TUNNEL_PROTOCOL": "quic",
    }
    config = config_from(environ, tmp_path, 9000)
    assert config is not None and config.mode == "named" and config.token == TOKEN
    assert (
        config.executable == "/opt/cloudflared" and config.named_url == "https://hooks.example.com"
    )
    assert config.protocol == "quic" and config.origin_url == "http://127.0.0.1:9000"
    with pytest.raises(SettingsError, match="POSTFLOW_TUNNEL"):
        config_from({"POSTFLOW_TUNNEL": "yes"}, tmp_path, 1)
    with pytest.raises(SettingsError, match="POSTFLOW_TUNNEL_METRICS_PORT"):
        config_from({"POSTFLOW_TUNNEL": "quick", "POSTFLOW_TUNNEL_METRICS_PORT": "x"}, tmp_path, 1)


def test_missing_executable_names_the_install_command(tmp_path: Path) -> None:
    """not finding cloudflared says how to install it on this OS, or to set POSTFLOW_CLOUDFLARED."""
    with pytest.raises(CloudflaredNotInstalledError) as caught:
        resolve_executable(None, path=str(tmp_path), platform="darwin")
    assert "brew install cloudflared" in str(caught.value)
    assert "POSTFLOW_CLOUDFLARED" in str(caught.value)
    with pytest.raises(CloudflaredNotInstalledError) as caught:
        resolve_executable(str(tmp_path / "nope"), platform="linux")
    assert "dpkg -i cloudflared.deb" in str(caught.value)
    assert "github.com/cloudflare/cloudflared/releases" in install_hint("win32")


def test_executable_found_by_path_or_on_path(tmp_path: Path) -> None:
    """an explicit path is used as is; otherwise cloudflared is looked up on PATH."""
    assert resolve_executable(str(FAKE_CLOUDFLARED)) == str(FAKE_CLOUDFLARED)
    link = tmp_path / "cloudflared"
    link.symlink_to(FAKE_CLOUDFLARED)
    assert resolve_executable(None, path=str(tmp_path)) == str(link)


def test_metrics_port_zero_picks_a_free_port_and_a_taken_one_is_refused() -> None:
    """port 0 picks a free port; a port in use raises MetricsPortInUseError."""
    assert metrics_port(CloudflaredConfig(mode="quick", local_port=1)) > 0
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        with pytest.raises(MetricsPortInUseError, match=re.escape(f"127.0.0.1:{taken}")):
            metrics_port(CloudflaredConfig(mode="quick", local_port=1, metrics_port=taken))


def test_check_cloudflared_reads_the_version() -> None:
    """check_cloudflared returns the executable and version of a usable cloudflared."""
    check = check_cloudflared(str(FAKE_CLOUDFLARED))
    assert check.version == "2026.8.0" and "built 2026-08-12-1200 UTC" in check.text


def test_check_cloudflared_refuses_an_old_version(monkeypatch: pytest.MonkeyPatch) -> None:
    """a cloudflared older than the minimum is reported too old, naming the upgrade."""
    monkeypatch.setenv("FAKE_CLOUDFLARED_VERSION", "2021.9.0")
    with pytest.raises(CloudflaredTooOldError, match=r"2021\.9\.0 is too old"):
        check_cloudflared(str(FAKE_CLOUDFLARED))


def _state(attempt: int, exc: BaseException) -> tenacity.RetryCallState:
    state = tenacity.RetryCallState(tenacity.AsyncRetrying(), None, (), {})
    state.attempt_number = attempt
    state.set_exception((type(exc), exc, None))
    return state


def test_backoff_is_exponential_and_bounded() -> None:
    """waits double from initial and stop growing at maximum."""
    wait = BackoffWait(RestartPolicy(initial=1, maximum=10, jitter=0))
    crash = CloudflaredExitedError(2, "panic")
    assert [wait(_state(n, crash)) for n in range(1, 7)] == [1, 2, 4, 8, 10, 10]


def test_backoff_jitter_stays_within_bounds() -> None:
    """jitter adds at most ``jitter`` seconds and never exceeds the maximum."""
    wait = BackoffWait(RestartPolicy(initial=1, maximum=5, jitter=0.5))
    crash = CloudflaredExitedError(2, None)
    for n in range(1, 8):
        value = wait(_state(n, crash))
        assert min(5, 2 ** (n - 1)) <= value <= min(5, 2 ** (n - 1) + 0.5)


def test_rate_limit_waits_minutes() -> None:
    """a rate-limited attempt waits rate_limit_wait, whatever the attempt number."""
    wait = BackoffWait(RestartPolicy(jitter=0, rate_limit_wait=300))
    assert wait(_state(1, TunnelRateLimitedError())) == 300


def test_only_transient_failures_are_retried() -> None:
    """crashes, never-ready and rate limits retry; bad token, missing binary, port taken do not."""
    assert is_transient(CloudflaredExitedError(1, None))
    assert is_transient(TunnelNeverReadyError(1, "http2", None))
    assert is_transient(TunnelRateLimitedError())
    assert not is_transient(InvalidTunnelTokenError())
    assert not is_transient(CloudflaredNotInstalledError("x"))
    assert not is_transient(MetricsPortInUseError("127.0.0.1:1"))
    assert not is_transient(RuntimeError("bug"))


def test_every_error_is_a_domain_tunnel_error() -> None:
    """the adapter's errors are TunnelErrors, so the core handles them without importing us."""
    for error in (
        InvalidTunnelTokenError(),
        TunnelRateLimitedError(),
        PublicExposureRefusedError(),
    ):
        assert isinstance(error, TunnelError)


def test_public_exposure_needs_a_secret_or_an_explicit_override() -> None:
    """publishing without a webhook secret is refused unless the insecure option is set."""
    assert public_exposure_allowed(secret_set=True, allow_insecure=False)
    assert public_exposure_allowed(secret_set=False, allow_insecure=True)
    assert not public_exposure_allowed(secret_set=False, allow_insecure=False)
    with pytest.raises(PublicExposureRefusedError, match="without a webhook secret"):
        require_public_exposure_allowed(secret_set=False, allow_insecure=False)


def test_config_from_the_app_settings() -> None:
    """the app's Settings map onto the tunnel config; a wildcard bind host becomes 127.0.0.1."""
    from postflow_webhooks.app.settings import Settings

    assert CloudflaredConfig.from_settings(Settings()) is None
    settings = Settings(
        host="0.0.0.0", port=9000, tunnel="named", tunnel_token=TOKEN, tunnel_hostname="h.example"
    )
    config = CloudflaredConfig.from_settings(settings, ready_timeout=5.0)
    assert config is not None and config.mode == "named" and config.token == TOKEN
    assert config.origin_url == "http://127.0.0.1:9000" and config.ready_timeout == 5.0
    assert config.named_url == "https://h.example" and config.protocol == "http2"
