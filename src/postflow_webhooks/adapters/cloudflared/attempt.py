"""What one cloudflared process has said so far, and the error its exit means."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import attrs

from postflow_webhooks.adapters.cloudflared.errors import (
    CloudflaredError,
    CloudflaredExitedError,
    InvalidTunnelTokenError,
    MetricsPortInUseError,
    TunnelRateLimitedError,
)
from postflow_webhooks.adapters.cloudflared.output import Kind, Line


@attrs.define
class Attempt:
    """The facts gathered from one process's output: URL, registration, failure hints."""

    registered: asyncio.Event = attrs.field(factory=asyncio.Event)
    box_url: str | None = None
    version: str | None = None
    rate_limited: bool = False
    invalid_token: bool = False
    address_in_use: bool = False
    fatal: str | None = None
    edge_error: str | None = None

    def observe(self, line: Line) -> None:
        """Record what ``line`` tells about this process."""
        kind = line.kind
        if kind is Kind.URL:
            self.box_url = line.url
        elif kind is Kind.REGISTERED:
            self.registered.set()
        elif kind is Kind.EDGE_FAILURE:
            self.edge_error = line.text
        elif kind is Kind.RATE_LIMITED:
            self.rate_limited = True
        elif kind is Kind.INVALID_TOKEN:
            self.invalid_token = True
        elif kind is Kind.ADDRESS_IN_USE:
            self.address_in_use = True
        elif kind is Kind.FATAL:
            self.fatal = line.text
        elif line.message.startswith("Version ") and len(line.message.split()) > 1:
            self.version = line.message.split()[1]

    def exit_error(
        self, code: int, *, named: bool, metrics_address: str, last_lines: Sequence[str]
    ) -> CloudflaredError:
        """The error an exit with ``code`` means, given what the process printed."""
        if self.invalid_token or (code == 255 and named):
            return InvalidTunnelTokenError()
        if self.address_in_use:
            return MetricsPortInUseError(metrics_address)
        if self.rate_limited:
            return TunnelRateLimitedError()
        return CloudflaredExitedError(code, self.fatal or (last_lines[-1] if last_lines else None))
