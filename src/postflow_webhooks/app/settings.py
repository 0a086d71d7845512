"""Settings: one frozen object, read once at start.

Sources, lowest to highest precedence:

1. defaults (the embedded default: SQLite under ``./data``, no tunnel, no Discord);
2. ``<config dir>/frameio_config.json`` (the seed's keys plus ``webhook_secret``;
   an optional ``"receiver"`` object inside it holds receiver keys);
3. ``<config dir>/receiver.json`` (receiver keys);
4. environment variables ``POSTFLOW_<KEY>`` (plus ``TUNNEL_TOKEN``);
5. command-line flags.

The config dir is ``POSTFLOW_CONFIG_DIR`` (default ``./config``). Every file is
optional. A missing or malformed value fails at start naming the key and
where it came from. Secrets are ``repr=False`` and never shown.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs

from postflow_webhooks.app import workflow
from postflow_webhooks.app.workflow import RouteSetting
from postflow_webhooks.domain.announce import Mentions
from postflow_webhooks.domain.mapping import DEFAULT_REVIEW_FIELD, ReviewMapping, ReviewOption
from postflow_webhooks.domain.statuses import PostflowStatus

log = logging.getLogger("postflow_webhooks.settings")

FRAMEIO_CONFIG = "frameio_config.json"
RECEIVER_CONFIG = "receiver.json"
STORES = ("sqlite", "json", "postgres")
TUNNEL_MODES = ("off", "quick", "named")
LOG_FORMATS = ("text", "json")


class SettingsError(Exception):
    """A setting is missing or malformed; says which key and where it came from."""

    def __init__(self, key: str, source: str, problem: str) -> None:
        super().__init__(f"{source}: {key}: {problem}")
        self.key = key
        self.source = source
        self.problem = problem


def _secret() -> Any:
    return attrs.field(default=None, repr=False)


@attrs.frozen
class Settings:
    """Everything the receiver is configured with."""

    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path = Path("data")
    config_dir: Path = Path("config")
    log_dir: Path = Path("logs")
    # When set, data, logs and config default to its data/, logs/ and config/.
    state_dir: Path | None = None
    store: str = "sqlite"
    database_url: str | None = _secret()
    webhook_secret: str | None = _secret()
    log_format: str = "text"
    log_level: str = "INFO"
    retention_days: float = 7.0
    worker_batch: int = 256
    tunnel: str = "off"
    cloudflared: str | None = None
    tunnel_token: str | None = _secret()
    tunnel_token_file: Path | None = None
    tunnel_hostname: str | None = None
    tunnel_protocol: str = "http2"
    tunnel_metrics_port: int = 0
    allow_insecure_public: bool = False
    public_status: bool = False
    discord_webhook_url: str | None = _secret()
    discord_statuses: tuple[PostflowStatus, ...] = tuple(PostflowStatus)
    discord_comments: bool = False
    discord_username: str | None = None
    discord_avatar_url: str | None = None
    frameio_client_id: str | None = None
    frameio_client_secret: str | None = _secret()
    frameio_redirect_uri: str | None = None
    frameio_account_id: str | None = None
    frameio_workspace_id: str | None = None
    frameio_api_base: str | None = None
    frameio_ims_token_url: str | None = None
    frameio_ims_authorize_url: str | None = None
    reconcile_interval: float = 600.0
    max_header_bytes: int = 16384
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    idle_timeout: float = 5.0
    max_connections: int = 2048
    # The studio's workflow (app/workflow.py).
    review_field: str = DEFAULT_REVIEW_FIELD
    review_options: tuple[ReviewOption, ...] = ()
    discord_routes: tuple[RouteSetting, ...] = ()
    discord_mentions: Mentions = ()

    # Watching it (docs/operations.md).
    status_token: str | None = _secret()
    discord_alerts_url: str | None = _secret()
    alerts: bool = True
    tunnel_down_threshold: float = 60.0
    backlog_age_threshold: float = 120.0
    alert_check_interval: float = 15.0
    alert_resolve_after: float = 30.0

    @property
    def review_mapping(self) -> ReviewMapping:
        """Frame.io's default review options with the studio's added (theirs win)."""
        return ReviewMapping.with_defaults(self.review_field, self.review_options)

    @property
    def signature_required(self) -> bool:
        """True when deliveries must be signed."""
        return bool(self.webhook_secret)

    @property
    def local_url(self) -> str:
        """The receiver's local base URL."""
        return f"http://{self.host}:{self.port}"


# -- parsers: text or JSON value -> typed value; raise ValueError with a reason ---


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("expected a non-empty string")
    return value.strip()


def _optional_text(value: Any) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return _text(value)


def _port(value: Any) -> int:
    number = _integer(value)
    if not 1 <= number <= 65535:
        raise ValueError(f"expected a port number from 1 to 65535, got {number}")
    return number


def _metrics_port(value: Any) -> int:
    number = _integer(value)
    if not 0 <= number <= 65535:
        raise ValueError(f"expected 0 (pick a free port) or a port number, got {number}")
    return number


def _integer(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("expected a whole number, got a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    raise ValueError(f"expected a whole number, got {value!r}")


def _positive_int(value: Any) -> int:
    number = _integer(value)
    if number < 1:
        raise ValueError(f"expected a whole number of at least 1, got {number}")
    return number


def _header_bytes(value: Any) -> int:
    number = _integer(value)
    if number < 1024:
        raise ValueError(f"expected at least 1024 (bytes), got {number}")
    return number


def _positive_float(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"expected a number, got {value!r}") from None
    if isinstance(value, bool) or not number > 0:
        raise ValueError(f"expected a number above 0, got {value!r}")
    return number


def _non_negative_float(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"expected a number, got {value!r}") from None
    if isinstance(value, bool) or not number >= 0:
        raise ValueError(f"expected a number of at least 0, got {value!r}")
    return number


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        folded = value.strip().lower()
        if folded in ("1", "true", "yes", "on"):
            return True
        if folded in ("0", "false", "no", "off", ""):
            return False
    raise ValueError(f"expected true or false, got {value!r}")


def _path(value: Any) -> Path:
    if isinstance(value, Path):
        return value.expanduser()
    return Path(_text(value)).expanduser()


def _optional_path(value: Any) -> Path | None:
    if isinstance(value, Path):
        return value.expanduser()
    text = _optional_text(value)
    return None if text is None else Path(text).expanduser()


def _choice(options: tuple[str, ...]) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        text = _text(value).lower()
        if text not in options:
            raise ValueError(f"expected one of {', '.join(options)}, got {value!r}")
        return text

    return parse


def _url(value: Any) -> str | None:
    text = _optional_text(value)
    if text is None:
        return None
    scheme, _, rest = text.partition("://")
    if scheme.lower() not in ("http", "https") or not rest.split("/")[0]:
        raise ValueError("expected an http(s) URL")
    return text


def _statuses(value: Any) -> tuple[PostflowStatus, ...]:
    if isinstance(value, str) and value.strip().lower() == "none":
        return ()
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        raise ValueError("expected a comma-separated list of status names")
    found: list[PostflowStatus] = []
    for item in items:
        text = str(item).strip()
        if not text:
            continue
        if text.lower() == "all":
            return tuple(PostflowStatus)
        status = PostflowStatus.from_text(text) or PostflowStatus.__members__.get(text.upper())
        if status is None:
            names = ", ".join(s.name for s in PostflowStatus)
            raise ValueError(f"unknown status {text!r}; use {names}, all or none")
        found.append(status)
    return tuple(found)


def _database_url(value: Any) -> str | None:
    text = _optional_text(value)
    if text is None:
        return None
    scheme, _, rest = text.partition("://")
    if scheme.lower() not in ("postgresql", "postgres") or not rest:
        raise ValueError("expected postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE")
    return text


def shared_store_problem(settings: Settings) -> tuple[str, str] | None:
    """The key and the reason when the store and tunnel settings cannot work together."""
    if settings.store != "postgres":
        return None
    if not settings.database_url:
        return "database_url", (
            "store is postgres but no database URL is set: set POSTFLOW_DATABASE_URL "
            "(or --database-url, or database_url in receiver.json)"
        )
    if settings.tunnel == "quick":
        return "tunnel", (
            "a quick tunnel cannot serve a shared store: each receiver would get its own random "
            "URL, and Frame.io delivers to one. Use a named tunnel on every receiver "
            "(POSTFLOW_TUNNEL=named, the same TUNNEL_TOKEN, POSTFLOW_TUNNEL_HOSTNAME), or "
            "POSTFLOW_TUNNEL=off behind your own load balancer (see docs/scaling.md)"
        )
    return None


def _log_level(value: Any) -> str:
    text = _text(value).upper()
    if text not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ValueError(f"expected DEBUG, INFO, WARNING or ERROR, got {value!r}")
    return text


PARSERS: dict[str, Callable[[Any], Any]] = {
    "host": _text,
    "port": _port,
    "data_dir": _path,
    "config_dir": _path,
    "log_dir": _path,
    "state_dir": _optional_path,
    "store": _choice(STORES),
    "database_url": _database_url,
    "webhook_secret": _optional_text,
    "log_format": _choice(LOG_FORMATS),
    "log_level": _log_level,
    "retention_days": _positive_float,
    "worker_batch": _positive_int,
    "tunnel": _choice(TUNNEL_MODES),
    "cloudflared": _optional_text,
    "tunnel_token": _optional_text,
    "tunnel_token_file": _optional_path,
    "tunnel_hostname": _optional_text,
    "tunnel_protocol": _choice(("http2", "quic", "auto")),
    "tunnel_metrics_port": _metrics_port,
    "allow_insecure_public": _boolean,
    "public_status": _boolean,
    "discord_webhook_url": _url,
    "discord_statuses": _statuses,
    "discord_comments": _boolean,
    "discord_username": _optional_text,
    "discord_avatar_url": _url,
    "frameio_client_id": _optional_text,
    "frameio_client_secret": _optional_text,
    "frameio_redirect_uri": _optional_text,
    "frameio_account_id": _optional_text,
    "frameio_workspace_id": _optional_text,
    "frameio_api_base": _url,
    "frameio_ims_token_url": _url,
    "frameio_ims_authorize_url": _url,
    "reconcile_interval": _positive_float,
    "max_header_bytes": _header_bytes,
    "header_timeout": _positive_float,
    "body_timeout": _positive_float,
    "idle_timeout": _positive_float,
    "max_connections": _positive_int,
    "review_field": workflow.review_field,
    "review_options": workflow.review_options,
    "discord_routes": workflow.routes,
    "discord_mentions": workflow.mentions,
    "status_token": _optional_text,
    "discord_alerts_url": _url,
    "alerts": _boolean,
    "tunnel_down_threshold": _positive_float,
    "backlog_age_threshold": _positive_float,
    "alert_check_interval": _positive_float,
    "alert_resolve_after": _non_negative_float,
}

SECRET_KEYS = frozenset(
    {
        "webhook_secret",
        "tunnel_token",
        "discord_webhook_url",
        "frameio_client_secret",
        "database_url",
        "status_token",
        "discord_alerts_url",
    }
)

# Keys of the seed's frameio_config.json and the settings they fill.
FRAMEIO_KEYS = {
    "client_id": "frameio_client_id",
    "client_secret": "frameio_client_secret",
    "redirect_uri": "frameio_redirect_uri",
    "account_id": "frameio_account_id",
    "workspace_id": "frameio_workspace_id",
    "webhook_secret": "webhook_secret",
}

# Keys earlier releases read, accepted and ignored (with a warning) so upgrades start.
RETIRED_KEYS = {
    "worker_process": "since 0.2.0 the worker always runs in the receiver's own process",
}

# Environment variables other than POSTFLOW_<KEY>.
EXTRA_ENV = {"TUNNEL_TOKEN": "tunnel_token"}

# What systemd sets for a unit with StateDirectory=; the state directory when nothing else is.
SYSTEMD_STATE_DIRECTORY = "STATE_DIRECTORY"


def env_name(key: str) -> str:
    """The environment variable for a settings key."""
    return f"POSTFLOW_{key.upper()}"


def load_settings(environ: Mapping[str, str], flags: Mapping[str, Any] | None = None) -> Settings:
    """Read every source once, in precedence order, into ``Settings``."""
    values: dict[str, Any] = {}
    sources: list[tuple[str, Mapping[str, Any]]] = []
    config_dir = _config_dir(environ, flags or {})
    frameio_file = config_dir / FRAMEIO_CONFIG
    frameio = _read_json(frameio_file)
    if frameio is not None:
        seed = {FRAMEIO_KEYS[k]: v for k, v in frameio.items() if k in FRAMEIO_KEYS}
        sources.append((str(frameio_file), seed))
        section = frameio.get("receiver")
        if section is not None:
            if not isinstance(section, dict):
                raise SettingsError("receiver", str(frameio_file), "expected an object")
            sources.append((f"{frameio_file} (receiver)", _known(section, str(frameio_file))))
    receiver_file = config_dir / RECEIVER_CONFIG
    receiver = _read_json(receiver_file)
    if receiver is not None:
        sources.append((str(receiver_file), _known(receiver, str(receiver_file))))
    env_values = {key: environ[env_name(key)] for key in PARSERS if env_name(key) in environ}
    for name, key in EXTRA_ENV.items():
        if name in environ and env_name(key) not in environ:
            env_values[key] = environ[name]
    sources.append(("environment", env_values))
    if flags:
        sources.append(("command line", {k: v for k, v in flags.items() if v is not None}))
    sources.insert(0, _state_defaults(sources, environ))
    for source, mapping in sources:
        for key, raw in mapping.items():
            values[key] = _parse(key, raw, source)
    values["config_dir"] = config_dir
    settings = Settings(**values)
    problem = shared_store_problem(settings)
    if problem is not None:
        raise SettingsError(problem[0], "configuration", problem[1])
    return settings


def _state_dir_given(environ: Mapping[str, str], flags: Mapping[str, Any]) -> Path | None:
    """The state directory from the flag, ``POSTFLOW_STATE_DIR`` or systemd's ``StateDirectory=``."""
    if flags.get("state_dir"):
        found: Path = _parse("state_dir", flags["state_dir"], "command line")
        return found
    if environ.get(env_name("state_dir")):
        found = _parse("state_dir", environ[env_name("state_dir")], "environment")
        return found
    # systemd sets STATE_DIRECTORY for a unit with StateDirectory= (colon-separated).
    systemd = environ.get(SYSTEMD_STATE_DIRECTORY, "").split(":")[0]
    return Path(systemd) if systemd else None


def _config_dir(environ: Mapping[str, str], flags: Mapping[str, Any]) -> Path:
    """``--config-dir``, else ``POSTFLOW_CONFIG_DIR``, else the state directory's, else ./config."""
    if flags.get("config_dir"):
        return Path(flags["config_dir"]).expanduser()
    if environ.get(env_name("config_dir")):
        return Path(environ[env_name("config_dir")]).expanduser()
    state = _state_dir_given(environ, flags)
    return state / "config" if state else Path("config")


def _state_defaults(
    sources: list[tuple[str, Mapping[str, Any]]], environ: Mapping[str, str]
) -> tuple[str, dict[str, Any]]:
    """The lowest source: data and logs under the state directory, when one is set.

    The state directory itself may come from any source (the last one wins);
    an explicit ``data_dir`` or ``log_dir`` anywhere still wins over it.
    """
    given: Any = environ.get(SYSTEMD_STATE_DIRECTORY, "").split(":")[0] or None
    where = SYSTEMD_STATE_DIRECTORY
    for source, mapping in sources:
        if mapping.get("state_dir") not in (None, ""):
            given, where = mapping["state_dir"], source
    state = _parse("state_dir", given, where) if given else None
    if state is None:
        return "defaults", {}
    return "state directory", {
        "state_dir": state,
        "data_dir": state / "data",
        "log_dir": state / "logs",
    }


def _parse(key: str, raw: Any, source: str) -> Any:
    where = env_name(key) if source == "environment" else source
    try:
        return PARSERS[key](raw)
    except ValueError as exc:
        problem = str(exc) if key not in SECRET_KEYS else "malformed value (not shown)"
        raise SettingsError(key, where, problem) from None


def _known(section: Mapping[str, Any], source: str) -> dict[str, Any]:
    for key in sorted(set(section) & set(RETIRED_KEYS)):
        log.warning("%s: %s is ignored: %s", source, key, RETIRED_KEYS[key])
    unknown = sorted(set(section) - set(PARSERS) - set(RETIRED_KEYS))
    if unknown:
        raise SettingsError(unknown[0], source, "unknown key")
    return {key: value for key, value in section.items() if key in PARSERS}


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise SettingsError("(file)", str(path), f"cannot be read: {exc.strerror}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SettingsError(
            "(file)",
            str(path),
            f"not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})",
        ) from None
    if not isinstance(data, dict):
        raise SettingsError("(file)", str(path), "expected a JSON object")
    return data
