"""The storage boundary's converter: records and notifications to JSON and back.

One private converter built by ``make_converter``; nothing is registered on
cattrs' global converter. Datetimes travel as ISO 8601 strings, enums as values.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, TypeVar

import cattrs
from cattrs.preconf.json import make_converter as make_json_converter

from postflow_webhooks.domain.records import Notification, UploadRecord

T = TypeVar("T")


def make_converter() -> cattrs.Converter:
    """A converter for stored values: ISO datetimes, enum values, tuples as lists."""
    converter = make_json_converter()
    converter.register_unstructure_hook(datetime, lambda value: value.isoformat())
    converter.register_structure_hook(datetime, lambda value, _: datetime.fromisoformat(value))
    return converter


_CONVERTER = make_converter()


def to_plain(value: Any) -> Any:
    """A stored value as plain JSON-ready data."""
    return _CONVERTER.unstructure(value)


def from_plain(data: Any, cls: type[T]) -> T:
    """Plain data back into a stored value (records of earlier releases upgraded)."""
    if cls is UploadRecord:
        data = upgrade_record(data)
    return _CONVERTER.structure(data, cls)


def upgrade_record(data: Any) -> Any:
    """A stored record from before per-comment tracking, in today's shape.

    Until 0.2, a record counted comments (``comment_count``) and remembered the
    keys of the last 50 (``recent_comment_keys``); every comment read as open.
    Each becomes a ``CommentEntry`` (open), the ones counted but not
    remembered an anonymous ``legacy:<n>`` entry, so the counts stay exact and
    later events on those comments find them. Today's records pass unchanged.
    """
    if not isinstance(data, dict) or "comments" in data:
        return data
    upgraded = dict(data)
    keys = [k for k in upgraded.pop("recent_comment_keys", None) or [] if isinstance(k, str)]
    count = upgraded.get("comment_count", 0)
    count = count if isinstance(count, int) and count > 0 else 0
    keys = keys[-count:] if count else []
    anonymous = [f"legacy:{n}" for n in range(count - len(keys))]
    entries: list[dict[str, Any]] = [{"key": key} for key in (*anonymous, *keys)]
    last = upgraded.get("last_comment")
    if entries and isinstance(last, dict):
        entries[-1].update({k: last.get(k) for k in ("text", "author", "at")})
    upgraded["comments"] = entries
    upgraded["open_comments"] = len(entries)
    return upgraded


def dump_record(record: UploadRecord) -> str:
    """A record as compact JSON text."""
    return json.dumps(to_plain(record), ensure_ascii=False, separators=(",", ":"))


def load_record(text: str) -> UploadRecord:
    """A record from JSON text written by ``dump_record`` (of this release or an earlier one)."""
    return from_plain(json.loads(text), UploadRecord)


def dump_notification(notification: Notification) -> str:
    """A notification as compact JSON text (its id lives in the row)."""
    data = to_plain(notification)
    data.pop("id", None)
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def load_notification(text: str, notification_id: int) -> Notification:
    """A notification from JSON text, with the id of its row."""
    data = json.loads(text)
    data["id"] = notification_id
    return from_plain(data, Notification)
