"""Build cloudflared's argv and environment exactly as cloudflared.md recommends."""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Mapping

from postflow_webhooks.adapters.cloudflared.config import CloudflaredConfig
from postflow_webhooks.adapters.cloudflared.errors import (
    CloudflaredNotInstalledError,
    MetricsPortInUseError,
)

TOKEN_ENV = "TUNNEL_TOKEN"


def go_duration(seconds: float) -> str:
    """Seconds as a Go duration string: ``10s``, ``1m30s``, ``500ms``."""
    millis = round(seconds * 1000)
    if millis % 1000:
        return f"{millis}ms"
    whole = millis // 1000
    minutes, secs = divmod(whole, 60)
    if minutes and secs:
        return f"{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m"
    return f"{secs}s"


def resolve_executable(
    configured: str | None, path: str | None = None, platform: str | None = None
) -> str:
    """The cloudflared to run: the configured path, else ``cloudflared`` on ``PATH``."""
    if configured:
        if os.path.isfile(configured) and os.access(configured, os.X_OK):
            return configured
        found = shutil.which(configured, path=path)
        if found:
            return found
        raise CloudflaredNotInstalledError(f"POSTFLOW_CLOUDFLARED={configured}", platform)
    found = shutil.which("cloudflared", path=path)
    if found is None:
        raise CloudflaredNotInstalledError("cloudflared on PATH", platform)
    return found


def free_port(host: str) -> int:
    """A TCP port on ``host`` that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def metrics_port(config: CloudflaredConfig) -> int:
    """The configured metrics port if free, a free one when 0; else ``MetricsPortInUseError``."""
    if config.metrics_port == 0:
        return free_port(config.metrics_host)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((config.metrics_host, config.metrics_port))
        except OSError:
            raise MetricsPortInUseError(f"{config.metrics_host}:{config.metrics_port}") from None
    return config.metrics_port


def build_argv(config: CloudflaredConfig, executable: str, port: int) -> list[str]:
    """The command line; the token never appears on it (``ps`` shows argv)."""
    argv = [
        executable,
        "tunnel",
        "--no-autoupdate",
        "--metrics",
        f"{config.metrics_host}:{port}",
        "--loglevel",
        "info",
        "--protocol",
        config.protocol,
        "--grace-period",
        go_duration(config.grace_period),
    ]
    if config.mode == "quick":
        return [*argv, "--url", config.origin_url]
    argv.append("run")
    if config.token is None and config.token_file is not None:
        argv += ["--token-file", str(config.token_file)]
    return argv


def build_env(config: CloudflaredConfig, base: Mapping[str, str]) -> dict[str, str]:
    """The child's environment: ``base`` plus extras, with ``TUNNEL_TOKEN`` only when named."""
    env = {**base, **config.extra_env}
    env.pop(TOKEN_ENV, None)
    if config.mode == "named" and config.token is not None:
        env[TOKEN_ENV] = config.token
    return env
