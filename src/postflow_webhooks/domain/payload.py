"""The raw shape of a delivery: what the JSON holds, before any meaning is given to it.

Every field is optional and typed strictly; keys not listed here are ignored.
Turning decoded JSON into these values (and reporting every problem with its
JSON path) is the edge's job (``adapters/payload.py``); reading meaning into
them is ``events.py``'s.
"""

from __future__ import annotations

from typing import NewType

import attrs

Identifier = NewType("Identifier", str)

LINK_FIELDS = ("view_url", "download_url", "thumbnail_url", "original_url")


@attrs.frozen
class RawRef:
    """A reference to an account, workspace, project, user or team."""

    id: Identifier | None = None


@attrs.frozen
class RawAuthor:
    """A comment's author, when sent as an object."""

    name: str | None = None
    id: Identifier | None = None


@attrs.frozen
class RawResource:
    """The ``resource`` object: the file, asset or comment the event is about."""

    id: Identifier | None = None
    type: str | None = None
    name: str | None = None
    status: str | None = None
    review_status: str | None = None
    label: str | None = None
    version: int | None = None
    file_id: Identifier | None = None
    comment_id: Identifier | None = None
    parent_id: Identifier | None = None
    text: str | None = None
    comment: str | None = None
    author: str | RawAuthor | None = None
    links: dict[str, str] | None = None
    view_url: str | None = None
    download_url: str | None = None
    thumbnail_url: str | None = None
    original_url: str | None = None


@attrs.frozen
class RawPayload:
    """A whole delivery as sent."""

    event_type: str | None = None
    type: str | None = None
    resource: RawResource | None = None
    account: RawRef | None = None
    workspace: RawRef | None = None
    project: RawRef | None = None
    user: RawRef | None = None
    team: RawRef | None = None


def json_type(value: object) -> str:
    """The JSON name of a decoded value's type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"
