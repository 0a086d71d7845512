"""Logging setup: readable text lines or one JSON object per line.

Values taken from a request (event types, file ids, reasons quoting them) go
into log records as arguments. ``EscapeControlCharacters`` escapes the
control characters in them (``\\n`` for a newline, ``\\x1b`` for ESC, ``\\u2028``,
lone surrogates as ``\\ud83d``), so no request can forge or break a log line.
It is installed on our loggers by ``create_app`` (so PostFlow's own handlers
get escaped records too) and on the handler ``configure_logging`` sets up.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from types import TracebackType

LOGGER_PREFIX = "postflow_webhooks"
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")


def escape_controls(text: str) -> str:
    """``text`` with control characters, line separators and lone surrogates escaped."""
    if text.isprintable():
        return text
    return _CONTROL.sub(lambda found: found.group().encode("unicode_escape").decode(), text)


class EscapeControlCharacters(logging.Filter):
    """Escapes control characters in a record's message and its text arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record in place; never drops it."""
        if isinstance(record.msg, str):
            record.msg = escape_controls(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_escaped(arg) for arg in record.args)
        return True


def _escaped(arg: object) -> object:
    if isinstance(arg, str):
        return escape_controls(arg)
    if isinstance(arg, BaseException):
        return escape_controls(str(arg))
    return arg


_ESCAPE = EscapeControlCharacters()


def escape_request_values() -> None:
    """Install the escaping filter on every ``postflow_webhooks`` logger (idempotent)."""
    names = [name for name in logging.root.manager.loggerDict if name.startswith(LOGGER_PREFIX)]
    for name in [LOGGER_PREFIX, *names]:
        logger = logging.getLogger(name)
        if _ESCAPE not in logger.filters:
            logger.addFilter(_ESCAPE)


# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
    "color_message",  # uvicorn's coloured copy of the message
    "taskName",
}


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, the record's named fields.

    Fields passed with ``extra=`` (``delivery_id``, ``event_type``, ``file_id``,
    ``outcome``, ``duration_ms``, ...) become keys of their own; an exception
    becomes ``error`` with its type, message and traceback.
    """

    def format(self, record: logging.LogRecord) -> str:
        """The record as a JSON line."""
        body: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                body[key] = _field(value)
        if record.exc_info and record.exc_info[0] is not None:
            kind, error = record.exc_info[0], record.exc_info[1]
            body["error"] = {
                "type": kind.__name__,
                "message": escape_controls(str(error)),
                "traceback": escape_controls(self.formatException(record.exc_info)),
            }
        if record.stack_info:
            body["stack"] = escape_controls(self.formatStack(record.stack_info))
        return json.dumps(body, ensure_ascii=False, default=str)


def _field(value: object) -> object:
    """A field's value for JSON: text escaped like the message, numbers and flags as they are."""
    if value is None or isinstance(value, bool | int | float):
        return value
    return escape_controls(str(value))


def configure_logging(log_format: str = "text", level: str = "INFO") -> None:
    """Send our and uvicorn's logs to stderr in the chosen format."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_ESCAPE)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    if log_format == "json":  # a crash's traceback is a JSON line too, not plain text
        sys.excepthook = _log_uncaught
    # httpx logs every request it makes at INFO (Discord, Frame.io, cloudflared's
    # metrics): noise in the receiver's log, and URLs that may carry tokens.
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLevelName(level)))


def _log_uncaught(
    kind: type[BaseException], error: BaseException, trace: TracebackType | None
) -> None:
    """An exception nothing caught, logged (``--log-format json``: with its traceback)."""
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, error, trace)
        return
    logging.getLogger(LOGGER_PREFIX).critical(
        "stopped by an unexpected error",
        exc_info=(kind, error, trace),
    )
