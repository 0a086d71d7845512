"""The tunnel adapter's settings: one frozen value, built from the app's settings."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Literal, Protocol

import attrs

from postflow_webhooks.adapters.cloudflared.errors import (
    PublicExposureRefusedError,
    TunnelSettingsError,
)

Mode = Literal["quick", "named"]
MODES: tuple[str, ...] = ("quick", "named")
PROTOCOLS: tuple[str, ...] = ("http2", "quic", "auto")
MAX_GRACE_PERIOD = 180.0  # cloudflared refuses a --grace-period above 3m


WILDCARD_HOSTS = ("", "0.0.0.0", "::", "localhost", "[::]")
TOKEN_PLACE = "Cloudflare's dashboard: Zero Trust > Networks > Tunnels > your tunnel"


class TunnelSettings(Protocol):
    """The application settings the tunnel reads (the app's ``Settings`` fits)."""

    @property
    def host(self) -> str:
        """The setting of that name."""
        ...

    @property
    def port(self) -> int:
        """The setting of that name."""
        ...

    @property
    def tunnel(self) -> str:
        """The setting of that name."""
        ...

    @property
    def cloudflared(self) -> str | None:
        """The setting of that name."""
        ...

    @property
    def tunnel_token(self) -> str | None:
        """The setting of that name."""
        ...

    @property
    def tunnel_token_file(self) -> Path | None:
        """The setting of that name."""
        ...

    @property
    def tunnel_hostname(self) -> str | None:
        """The setting of that name."""
        ...

    @property
    def tunnel_protocol(self) -> str:
        """The setting of that name."""
        ...

    @property
    def tunnel_metrics_port(self) -> int:
        """The setting of that name."""
        ...


def _positive(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if value <= 0:
        raise ValueError(f"{attribute.name} must be > 0, got {value!r}")


@attrs.frozen
class RestartPolicy:
    """How an unexpected exit is retried: bounded exponential backoff with jitter."""

    initial: float = 1.0
    maximum: float = 60.0
    multiplier: float = 2.0
    jitter: float = 1.0
    rate_limit_wait: float = 300.0
    max_failures: int = 5
    stable_after: float = 60.0

    def __attrs_post_init__(self) -> None:
        if self.max_failures < 1:
            raise ValueError("max_failures must be >= 1")
        if self.initial < 0 or self.maximum < self.initial or self.jitter < 0:
            raise ValueError("backoff needs 0 <= initial <= maximum and jitter >= 0")


@attrs.frozen
class CloudflaredConfig:
    """Everything needed to run and supervise one cloudflared process."""

    mode: Mode = attrs.field(validator=attrs.validators.in_(MODES))
    local_port: int = attrs.field(validator=attrs.validators.instance_of(int))
    local_host: str = "127.0.0.1"
    executable: str | None = None
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 0
    protocol: str = attrs.field(default="http2", validator=attrs.validators.in_(PROTOCOLS))
    grace_period: float = attrs.field(default=10.0, validator=_positive)
    token: str | None = attrs.field(default=None, repr=False)
    token_file: Path | None = None
    hostname: str | None = None
    ready_timeout: float = attrs.field(default=30.0, validator=_positive)
    kill_margin: float = 5.0
    restart: RestartPolicy = attrs.field(factory=RestartPolicy)
    log_file: Path = Path("logs/webhook_tunnel.log")
    log_max_bytes: int = 5_000_000
    log_backups: int = 3
    extra_env: Mapping[str, str] = attrs.field(factory=dict, repr=False)

    def __attrs_post_init__(self) -> None:
        if self.grace_period > MAX_GRACE_PERIOD:
            raise ValueError("grace_period must be <= 180 seconds (cloudflared's limit is 3m)")
        if self.mode == "named" and self.token is None and self.token_file is None:
            raise TunnelSettingsError(
                "a named tunnel needs its token: set TUNNEL_TOKEN (or POSTFLOW_TUNNEL_TOKEN), "
                "or POSTFLOW_TUNNEL_TOKEN_FILE (tunnel_token_file in receiver.json) to a file "
                f"holding it; copy it from {TOKEN_PLACE}. Without one, use a quick tunnel instead"
            )
        if self.local_host == "localhost":
            raise ValueError("use 127.0.0.1, not localhost: cloudflared tries [::1] first")

    @property
    def origin_url(self) -> str:
        """The local URL cloudflared forwards to."""
        return f"http://{self.local_host}:{self.local_port}"

    @property
    def named_url(self) -> str | None:
        """The public URL of a named tunnel, from the configured hostname."""
        if not self.hostname:
            return None
        host = self.hostname.removeprefix("https://").rstrip("/")
        return f"https://{host}"

    @classmethod
    def from_settings(
        cls, settings: TunnelSettings, **overrides: object
    ) -> CloudflaredConfig | None:
        """The config for the app's settings (None when the tunnel is off); overrides win."""
        if settings.tunnel not in MODES:
            return None
        named = settings.tunnel == "named"
        host = "127.0.0.1" if settings.host in WILDCARD_HOSTS else settings.host
        values: dict[str, object] = {
            "mode": settings.tunnel,
            "local_port": settings.port,
            "local_host": host,
            "executable": settings.cloudflared,
            "token": settings.tunnel_token if named else None,
            "token_file": settings.tunnel_token_file if named else None,
            "hostname": settings.tunnel_hostname,
            "protocol": settings.tunnel_protocol,
            "metrics_port": settings.tunnel_metrics_port,
            **overrides,
        }
        return cls(**values)  # type: ignore[arg-type]


def require_complete(config: CloudflaredConfig) -> None:
    """A named tunnel can give a public URL: its token file exists and its hostname is set.

    ``TunnelSettingsError`` names the setting to change otherwise.
    """
    if config.mode != "named":
        return
    if config.token is None and config.token_file is not None and not config.token_file.is_file():
        raise TunnelSettingsError(
            f"the named tunnel's token file {config.token_file} does not exist: fix "
            "POSTFLOW_TUNNEL_TOKEN_FILE (tunnel_token_file in receiver.json), or set "
            "TUNNEL_TOKEN instead"
        )
    if not config.hostname:
        raise TunnelSettingsError(
            "a named tunnel needs its public hostname: set POSTFLOW_TUNNEL_HOSTNAME (or "
            "tunnel_hostname in receiver.json) to the hostname you routed to the tunnel in "
            "Cloudflare"
        )


def public_exposure_allowed(secret_set: bool, allow_insecure: bool) -> bool:
    """Whether the receiver may be made public: only with a webhook secret, or when forced."""
    return secret_set or allow_insecure


def require_public_exposure_allowed(secret_set: bool, allow_insecure: bool) -> None:
    """Raise ``PublicExposureRefusedError`` (its message says why and how) unless allowed."""
    if not public_exposure_allowed(secret_set, allow_insecure):
        raise PublicExposureRefusedError()
