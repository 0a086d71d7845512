"""The Frame.io adapter's settings, read from the seed's ``frameio_config.json`` keys."""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import attrs

from postflow_webhooks.adapters.frameio.errors import FrameioConfigError

DEFAULT_API_BASE = "https://api.frame.io"
DEFAULT_IMS_TOKEN_URL = "https://ims-na1.adobelogin.com/ims/token/v3"
DEFAULT_IMS_AUTHORIZE_URL = "https://ims-na1.adobelogin.com/ims/authorize/v2"
DEFAULT_REDIRECT_URI = "http://localhost:3000/callback"
S2S_SCOPES = ("openid", "AdobeID", "frame.s2s.all")
USER_SCOPES = ("openid", "email", "profile", "offline_access", "additional_info.roles")
WEBHOOK_NAME = "postflow-webhooks"

_REQUIRED = ("client_id", "client_secret", "account_id", "workspace_id")


class AuthFlow(enum.Enum):
    """Which IMS grant supplies access tokens."""

    AUTO = "auto"  # a stored user token when there is one, else server-to-server
    SERVER = "server"  # client credentials (OAuth server-to-server credential)
    USER = "user"  # authorization code then refresh tokens (``postflow-webhooks auth``)


@attrs.frozen
class FrameioConfig:
    """Everything the Frame.io adapter needs; secrets are kept out of ``repr``."""

    client_id: str
    client_secret: str = attrs.field(repr=False)
    account_id: str
    workspace_id: str
    redirect_uri: str = DEFAULT_REDIRECT_URI
    api_base: str = DEFAULT_API_BASE
    ims_token_url: str = DEFAULT_IMS_TOKEN_URL
    ims_authorize_url: str = DEFAULT_IMS_AUTHORIZE_URL
    s2s_scopes: tuple[str, ...] = S2S_SCOPES
    user_scopes: tuple[str, ...] = USER_SCOPES
    flow: AuthFlow = AuthFlow.AUTO
    token_cache_path: Path = Path("data/frameio_token.json")
    webhook_secret_path: Path = Path("data/frameio_webhook_secret")
    webhook_name: str = WEBHOOK_NAME
    refresh_margin: float = 120.0
    details_cache_ttl: float = 5.0
    connect_timeout: float = 5.0
    read_timeout: float = 15.0
    reconcile_interval: float = 600.0

    @property
    def api_origin(self) -> str:
        """Scheme, host and port of the API, the only place a bearer token is sent."""
        parts = urlsplit(self.api_base)
        return f"{parts.scheme}://{parts.netloc}"

    @classmethod
    def from_mapping(
        cls,
        values: Mapping[str, Any],
        *,
        source: str,
        data_dir: Path = Path("data"),
        **overrides: Any,
    ) -> FrameioConfig:
        """Build from the seed's keys; a missing or malformed key fails naming it and ``source``."""
        found: dict[str, str] = {}
        for key in (*_REQUIRED, "redirect_uri"):
            value = values.get(key)
            if value is None and key == "redirect_uri":
                continue
            if not isinstance(value, str) or not value.strip():
                problem = "required" if value is None else "must be a non-empty string"
                raise FrameioConfigError(key, source, problem)
            found[key] = value.strip()
        redirect = found.get("redirect_uri", DEFAULT_REDIRECT_URI)
        parts = urlsplit(redirect)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise FrameioConfigError("redirect_uri", source, "must be an http(s) URL")
        settings: dict[str, Any] = {
            "token_cache_path": data_dir / "frameio_token.json",
            "webhook_secret_path": data_dir / "frameio_webhook_secret",
            **overrides,
        }
        return cls(
            client_id=found["client_id"],
            client_secret=found["client_secret"],
            account_id=found["account_id"],
            workspace_id=found["workspace_id"],
            redirect_uri=redirect,
            **settings,
        )

    @classmethod
    def from_file(
        cls, path: Path, *, data_dir: Path = Path("data"), **overrides: Any
    ) -> FrameioConfig:
        """Read ``config/frameio_config.json``; errors name the file and the key."""
        try:
            values = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise FrameioConfigError("(file)", str(path), "not found") from None
        except (OSError, ValueError) as exc:
            raise FrameioConfigError(
                "(file)", str(path), f"unreadable: {type(exc).__name__}"
            ) from None
        if not isinstance(values, dict):
            raise FrameioConfigError("(file)", str(path), "expected a JSON object")
        return cls.from_mapping(values, source=str(path), data_dir=data_dir, **overrides)
