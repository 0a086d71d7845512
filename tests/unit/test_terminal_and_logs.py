"""What people read: tables measured by display width, short times, JSON log lines."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import pytest

from postflow_webhooks.app.cli.common import display_width, short_time, table
from postflow_webhooks.app.logs import JsonFormatter
from postflow_webhooks.domain.statuses import PostflowStatus


@pytest.mark.parametrize(
    ("text", "width"),
    [
        ("abc", 3),
        ("APPROVED ✅", 11),
        ("PROCESSING ⚙️", 13),  # gear + VS16: shown as a two-column emoji
        ("COMPLETED 🎉", 12),
        ("e\u0301", 1),  # a combining accent takes no column
        ("日本", 4),
        ("", 0),
    ],
)
def test_display_width_counts_terminal_columns(text: str, width: int) -> None:
    """Wide characters and emoji take two columns; combining marks none."""
    assert display_width(text) == width


def test_a_table_lines_its_columns_up_whatever_the_emoji() -> None:
    """Every status label, emoji or not, leaves the next column at the same display column."""
    rows = [(s.label, "next") for s in PostflowStatus] + [("plain", "next")]
    lines = table(["status", "after"], rows).splitlines()
    columns = {display_width(line[: line.index("next")]) for line in lines[2:]}
    assert len(columns) == 1


def test_short_time_is_local_and_to_the_second() -> None:
    """An ISO time with microseconds and an offset reads as YYYY-MM-DD HH:MM:SS."""
    shown = short_time("2026-11-29T18:01:28.374610+00:00")
    assert shown is not None and len(shown) == 19 and shown[10] == " "
    assert short_time(None) is None and short_time("not a time") == "not a time"


def record(message: str, *args: object, **extra: object) -> logging.LogRecord:
    """A log record as the worker makes one."""
    made = logging.LogRecord("postflow_webhooks.worker", logging.INFO, "", 0, message, args, None)
    for key, value in extra.items():
        setattr(made, key, value)
    return made


def test_a_json_line_carries_the_named_fields() -> None:
    """Fields given with extra= become keys: delivery id, event type, file id, outcome, duration."""
    line = JsonFormatter().format(
        record(
            "delivery %s applied",
            "d-1",
            delivery_id="d-1",
            event_type="file.ready",
            file_id="f\n1",
            outcome="status_changed",
            duration_ms=1.5,
        )
    )
    body = json.loads(line)
    assert body["delivery_id"] == "d-1" and body["event_type"] == "file.ready"
    assert body["outcome"] == "status_changed" and body["duration_ms"] == 1.5
    assert body["file_id"] == "f\\n1"  # a request's control character stays escaped
    assert body["message"] == "delivery d-1 applied" and "\n" not in line


def test_a_json_line_carries_the_error_with_its_traceback() -> None:
    """An exception is an object: type, message and the whole traceback."""
    try:
        raise RuntimeError("the rules failed")
    except RuntimeError:
        made = record("delivery quarantined")
        made.exc_info = sys.exc_info()
    body = json.loads(JsonFormatter().format(made))
    assert body["error"]["type"] == "RuntimeError"
    assert body["error"]["message"] == "the rules failed"
    assert "Traceback (most recent call last)" in body["error"]["traceback"]
    assert "test_a_json_line_carries_the_error" in body["error"]["traceback"]


def test_a_lone_surrogate_in_a_field_does_not_break_the_line() -> None:
    """A value no encoder can write is escaped, so the line is still UTF-8 JSON."""
    line = JsonFormatter().format(record("x", file_id="bad\ud83d"))
    line.encode("utf-8")
    assert json.loads(line)["file_id"] == "bad\\ud83d"


def test_with_json_logs_a_crash_is_a_json_line_with_its_traceback() -> None:
    """An exception nothing caught, under --log-format json: one JSON line, traceback included."""
    script = (
        "from postflow_webhooks.app.logs import configure_logging\n"
        "configure_logging('json')\n"
        "def deep():\n"
        "    raise RuntimeError('boom')\n"
        "deep()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 1
    (line,) = [json.loads(text) for text in done.stderr.splitlines()]
    assert line["level"] == "CRITICAL" and line["error"]["type"] == "RuntimeError"
    assert "in deep" in line["error"]["traceback"]
