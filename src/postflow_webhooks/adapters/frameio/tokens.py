"""IMS tokens: the token value, a printable summary, and the owner-only cache file."""

from __future__ import annotations

import json
import logging
from datetime import datetime
from pathlib import Path

import attrs

from postflow_webhooks.adapters.frameio.config import AuthFlow
from postflow_webhooks.adapters.frameio.private_files import (
    read_private,
    remove_private,
    write_private,
)

log = logging.getLogger("postflow_webhooks.frameio")


@attrs.frozen
class Token:
    """An IMS access token, its expiry (Unix seconds) and, for the user flow, a refresh token."""

    access_token: str = attrs.field(repr=False)
    expires_at: float
    flow: AuthFlow
    client_id: str
    refresh_token: str | None = attrs.field(default=None, repr=False)
    scope: str | None = None

    def expiring(self, now: float, margin: float) -> bool:
        """True when the token expires within ``margin`` seconds of ``now``."""
        return now + margin >= self.expires_at


@attrs.frozen
class TokenSummary:
    """What the cache holds, safe to print: no token appears in it."""

    path: Path
    flow: AuthFlow
    expires_at: datetime
    has_refresh_token: bool
    scope: str | None


class TokenCache:
    """The token file: JSON, owner-only (0600), replaced atomically."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> Token | None:
        """The stored token, or ``None`` if there is none or it is unreadable."""
        raw = read_private(self.path)
        if raw is None:
            return None
        try:
            data = json.loads(raw)
            return Token(
                access_token=str(data["access_token"]),
                expires_at=float(data["expires_at"]),
                flow=AuthFlow(data["flow"]),
                client_id=str(data["client_id"]),
                refresh_token=data.get("refresh_token"),
                scope=data.get("scope"),
            )
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring unreadable Frame.io token cache %s", self.path)
            return None

    def save(self, token: Token) -> None:
        """Store ``token`` (0600, atomic)."""
        data = {
            "access_token": token.access_token,
            "expires_at": token.expires_at,
            "flow": token.flow.value,
            "client_id": token.client_id,
            "refresh_token": token.refresh_token,
            "scope": token.scope,
        }
        write_private(self.path, json.dumps(data).encode())

    def clear(self) -> bool:
        """Forget the stored token; True if there was one."""
        return remove_private(self.path)
