"""Connecting to PostgreSQL: the durable session settings, keepalives, and a redacted name.

Every connection asks for ``synchronous_commit=on`` (a commit is on the
server's disk when it returns, whatever the server's default) and UTC. Both
ends watch the TCP connection: the client (libpq keepalives and
``tcp_user_timeout``) and the server (the same settings per session), so a
receiver whose machine vanishes without closing its connection loses its
session, and with it its advisory locks, about ``DEAD_PEER_SECONDS`` later.

PostgreSQL's text cannot hold NUL, which a payload's event type, file id or
name may carry (SQLite stores it). ``nul_safe`` makes a connection write each
NUL in a string parameter as U+FFFD, the same way every time, so such a
delivery is stored and applied instead of refused; its stored bytes are kept
exactly (``bytea``).
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.abc import Buffer
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.types.string import StrBinaryDumper, StrDumperUnknown

from postflow_webhooks.domain.errors import StorageError

# Idle 3 s, then a probe every second, dead after 3 unanswered: about 6 s.
KEEPALIVE_IDLE = 3
KEEPALIVE_INTERVAL = 1
KEEPALIVE_COUNT = 3
# Data unacknowledged for this long also ends the connection (milliseconds).
TCP_USER_TIMEOUT_MS = 6000
DEAD_PEER_SECONDS = KEEPALIVE_IDLE + KEEPALIVE_INTERVAL * KEEPALIVE_COUNT
CONNECT_TIMEOUT = 5

_SESSION = (
    "-c synchronous_commit=on -c TimeZone=UTC "
    f"-c tcp_keepalives_idle={KEEPALIVE_IDLE} "
    f"-c tcp_keepalives_interval={KEEPALIVE_INTERVAL} "
    f"-c tcp_keepalives_count={KEEPALIVE_COUNT} "
    f"-c tcp_user_timeout={TCP_USER_TIMEOUT_MS}"
)


def parse(url: str) -> dict[str, Any]:
    """The URL's parts; ``StorageError`` (never showing the URL) when it is not one."""
    try:
        return conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        raise StorageError(
            "the PostgreSQL database URL is malformed (not shown, it may hold a password); "
            "expected postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE"
        ) from None


def conninfo(url: str, application_name: str = "postflow-webhooks") -> str:
    """The URL with our session settings and keepalives added (the user's options kept)."""
    parts = parse(url)
    options = " ".join(part for part in (parts.get("options"), _SESSION) if part)
    parts.update(
        options=options,
        keepalives=1,
        keepalives_idle=KEEPALIVE_IDLE,
        keepalives_interval=KEEPALIVE_INTERVAL,
        keepalives_count=KEEPALIVE_COUNT,
        tcp_user_timeout=TCP_USER_TIMEOUT_MS,
        application_name=parts.get("application_name") or application_name,
    )
    parts.setdefault("connect_timeout", CONNECT_TIMEOUT)
    return make_conninfo(**parts)


def redact(url: str) -> str:
    """The database as people may see it: ``postgresql://user@host:port/db``, no password."""
    try:
        parts = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "postgresql://(malformed URL, not shown)"
    user = str(parts.get("user") or "")
    host = str(parts.get("host") or "localhost")
    port = str(parts.get("port") or "5432")
    name = str(parts.get("dbname") or user)
    return f"postgresql://{user + '@' if user else ''}{host}:{port}/{name}"


def storage_error(label: str, exc: BaseException) -> StorageError:
    """A PostgreSQL failure as the domain's ``StorageError``, naming the database (redacted)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return StorageError(f"database {label}: {text}")


NUL_STAND_IN = "\ufffd"


class _NulSafeText(StrDumperUnknown):
    """Text parameters, each NUL written as U+FFFD."""

    def dump(self, obj: str) -> Buffer | None:
        return super().dump(obj.replace("\x00", NUL_STAND_IN) if "\x00" in obj else obj)


class _NulSafeBinary(StrBinaryDumper):
    """Binary text parameters (COPY), each NUL written as U+FFFD."""

    def dump(self, obj: str) -> Buffer | None:
        return super().dump(obj.replace("\x00", NUL_STAND_IN) if "\x00" in obj else obj)


def nul_safe(conn: psycopg.Connection[Any] | psycopg.AsyncConnection[Any]) -> None:
    """Make ``conn`` write NUL in strings as U+FFFD instead of failing (see the module doc)."""
    conn.adapters.register_dumper(str, _NulSafeText)
    conn.adapters.register_dumper(str, _NulSafeBinary)
