"""Checks a ``doctor`` command can run before any tunnel starts."""

from __future__ import annotations

import subprocess

import attrs

from postflow_webhooks.adapters.cloudflared.command import resolve_executable
from postflow_webhooks.adapters.cloudflared.errors import (
    CloudflaredNotInstalledError,
    CloudflaredTooOldError,
)
from postflow_webhooks.adapters.cloudflared.output import parse_version
from postflow_webhooks.adapters.cloudflared.tunnel import MINIMUM_VERSION


@attrs.frozen
class CloudflaredCheck:
    """A usable cloudflared: where it is and what ``--version`` said."""

    executable: str
    version: str
    text: str


def _as_tuple(version: str) -> tuple[int, int, int]:
    parsed = parse_version(version)
    assert parsed is not None
    return parsed


def check_cloudflared(
    executable: str | None = None, *, minimum: str = MINIMUM_VERSION, timeout: float = 10.0
) -> CloudflaredCheck:
    """Find cloudflared and read its version; raise the error naming the fix if unusable."""
    path = resolve_executable(executable)
    try:
        done = subprocess.run(
            [path, "--version"],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise CloudflaredNotInstalledError(f"{path} (cannot run: {exc})") from exc
    text = (done.stdout + done.stderr).strip()
    parsed = parse_version(text)
    if done.returncode != 0 or parsed is None:
        raise CloudflaredTooOldError(None, minimum)
    version = ".".join(str(part) for part in parsed)
    if parsed < _as_tuple(minimum):
        raise CloudflaredTooOldError(version, minimum)
    return CloudflaredCheck(executable=path, version=version, text=text)
