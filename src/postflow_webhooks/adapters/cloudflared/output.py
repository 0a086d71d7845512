"""Read cloudflared's stderr one line at a time: what each line means for the supervisor.

Only the banner's box row yields a URL: a looser pattern would also match
``https://api.trycloudflare.com`` in the error lines.
"""

from __future__ import annotations

import enum
import re

import attrs

ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
LINE = re.compile(
    r"^(?P<ts>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z) (?P<lvl>DBG|INF|WRN|ERR|FTL) "
)
BOX_URL = re.compile(r"^\S+ INF \|\s+(https://[a-z0-9-]+\.trycloudflare\.com)\s+\|$")
FIELD = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S+)')
VERSION = re.compile(r"(\d{4})\.(\d{1,2})\.(\d+)")


class Kind(enum.Enum):
    """What a line tells the supervisor."""

    OTHER = "other"
    URL = "url"
    REGISTERED = "registered"
    EDGE_FAILURE = "edge_failure"
    RETRYING = "retrying"
    RATE_LIMITED = "rate_limited"
    INVALID_TOKEN = "invalid_token"
    ADDRESS_IN_USE = "address_in_use"
    SHUTDOWN = "shutdown"
    FATAL = "fatal"


@attrs.frozen
class Line:
    """One parsed line: its text without ANSI codes, level, message and meaning."""

    text: str
    kind: Kind
    level: str | None = None
    message: str = ""
    url: str | None = None
    fields: dict[str, str] = attrs.field(factory=dict)


def strip_ansi(text: str) -> str:
    """The text without terminal colour codes or a trailing newline."""
    return ANSI.sub("", text).rstrip("\r\n")


def parse_fields(message: str) -> dict[str, str]:
    """The ``key=value`` pairs of a log line (quoted values unquoted)."""
    return {k: v[1:-1] if v.startswith('"') else v for k, v in FIELD.findall(message)}


def _classify(level: str | None, message: str) -> Kind:
    if "error code: 1015" in message or "429 Too Many Requests" in message:
        return Kind.RATE_LIMITED
    if "Provided Tunnel token is not valid" in message:
        return Kind.INVALID_TOKEN
    if "address already in use" in message:
        return Kind.ADDRESS_IN_USE
    if level is None:
        return Kind.FATAL
    if message.startswith("Registered tunnel connection"):
        return Kind.REGISTERED
    if message.startswith("Retrying connection in up to"):
        return Kind.RETRYING
    if message.startswith("Initiating graceful shutdown"):
        return Kind.SHUTDOWN
    if level == "ERR" and (
        message.startswith(("Failed to dial", "Unable to establish connection", "Serve tunnel"))
        or "Connection terminated" in message
    ):
        return Kind.EDGE_FAILURE
    return Kind.OTHER


def parse_line(raw: str) -> Line:
    """Parse one stderr line of cloudflared (ANSI stripped)."""
    text = strip_ansi(raw)
    box = BOX_URL.match(text)
    if box:
        return Line(text=text, kind=Kind.URL, level="INF", message=text, url=box.group(1))
    head = LINE.match(text)
    if head is None:
        if not text.strip():
            return Line(text=text, kind=Kind.OTHER)
        return Line(text=text, kind=_classify(None, text), message=text)
    level = head.group("lvl")
    message = text[head.end() :]
    kind = _classify(level, message)
    fields = parse_fields(message) if kind in (Kind.REGISTERED, Kind.EDGE_FAILURE) else {}
    return Line(text=text, kind=kind, level=level, message=message, fields=fields)


def parse_version(text: str) -> tuple[int, int, int] | None:
    """``(2026, 8, 0)`` from ``cloudflared version 2026.8.0 (built ...)``; None if absent."""
    match = VERSION.search(text)
    if match is None:
        return None
    return (int(match.group(1)), int(match.group(2)), int(match.group(3)))
