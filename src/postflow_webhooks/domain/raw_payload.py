"""The raw shape of a delivery, and the two ways of reading a decoded payload into it.

``RawPayload`` mirrors the JSON: every field optional, extra keys ignored,
types strict. ``read_plain`` reads the common shapes directly (every delivery
passes there); anything else goes to the cattrs converters: ``FAST``, and on
refusal ``DETAILED``, which lists every problem with its path
(``events.py`` turns them into a ``PayloadError``).
"""

from __future__ import annotations

from typing import Any, NamedTuple, NewType

import attrs
import cattrs

Identifier = NewType("Identifier", str)


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
    text: str | None = None
    comment: str | None = None
    author: str | RawAuthor | None = None
    links: dict[str, str] | None = None
    view_url: str | None = None
    download_url: str | None = None
    thumbnail_url: str | None = None
    original_url: str | None = None


LINK_FIELDS = ("view_url", "download_url", "thumbnail_url", "original_url")


@attrs.frozen
class RawPayload:
    """A whole delivery as sent, before any meaning is given to it."""

    event_type: str | None = None
    type: str | None = None
    resource: RawResource | None = None
    account: RawRef | None = None
    workspace: RawRef | None = None
    project: RawRef | None = None
    user: RawRef | None = None
    team: RawRef | None = None


def _strict_str(value: object, _: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {json_type(value)}")
    return value


def _identifier(value: object, _: object) -> Identifier:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError(f"expected a string or integer id, got {json_type(value)}")
    text = str(value)
    if not text.strip():
        raise ValueError("expected a non-empty id")
    return Identifier(text)


def _strict_int(value: object, _: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected an integer, got {json_type(value)}")
    return value


def _links(value: object, _: object) -> dict[str, str]:
    if not isinstance(value, dict):
        raise ValueError(f"expected an object, got {json_type(value)}")
    return {str(k): v for k, v in value.items() if isinstance(v, str)}


def _object(converter: cattrs.Converter, cls: type[Any]) -> Any:
    base = converter.gen_structure_attrs_fromdict(cls)

    def structure(value: object, _: object) -> Any:
        if not isinstance(value, dict):
            raise ValueError(f"expected an object, got {json_type(value)}")
        return base(value, cls)

    return structure


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


def make_converter(*, detailed: bool) -> cattrs.Converter:
    """The payload boundary's private converter: strict types, extra keys allowed.

    The plain one is fast; the detailed one collects every problem with its path
    and runs only when the plain one has refused a payload.
    """
    converter = cattrs.Converter(detailed_validation=detailed)
    converter.register_structure_hook(str, _strict_str)
    converter.register_structure_hook(int, _strict_int)
    converter.register_structure_hook(Identifier, _identifier)
    converter.register_structure_hook_func(lambda t: t == dict[str, str], _links)

    def author(value: object, _: object) -> str | RawAuthor | None:
        if value is None or isinstance(value, str):
            return value
        if isinstance(value, dict):
            return converter.structure(value, RawAuthor)
        raise ValueError(f"expected a string or object, got {json_type(value)}")

    converter.register_structure_hook_func(lambda t: t == str | RawAuthor | None, author)
    for cls in (RawRef, RawAuthor, RawResource, RawPayload):
        converter.register_structure_hook(cls, _object(converter, cls))
    return converter


FAST = make_converter(detailed=False)
DETAILED = make_converter(detailed=True)


_PLAIN_TEXT = frozenset(
    ("type", "name", "status", "review_status", "label", "text", "comment", *LINK_FIELDS)
)
_PLAIN_IDS = frozenset(("id", "file_id", "comment_id"))
_REFS = frozenset(("account", "workspace", "project", "user", "team"))
# Rarer resource fields, with richer types: left to the converter.
_RICH = frozenset(("author", "links", "version"))


class PlainPayload(NamedTuple):
    """A payload of the common shape, checked: its strings and ids, nothing richer."""

    event_type: str | None
    type: str | None
    # The resource's fields that are set, each a string (ids non-blank).
    resource: dict[str, str]
    # account, workspace, project, user, team: present ones, with their id if any.
    refs: dict[str, str | None]


def read_plain(payload: dict[str, Any]) -> PlainPayload | None:
    """The common shapes (strings, string ids, objects of ids), checked directly; else ``None``.

    Every delivery passes here, so the usual payload is read without building
    the raw objects or going through the converter's generic machinery,
    looking only at the keys present. Anything else, valid or not, returns
    ``None`` and goes to the converter, which has the last word (a property
    test holds the two paths to the same event).
    """
    event_type = payload.get("event_type")
    kind = payload.get("type")
    if (event_type is not None and type(event_type) is not str) or (
        kind is not None and type(kind) is not str
    ):
        return None
    fields: dict[str, str] = {}
    found = payload.get("resource")
    if found is not None:
        if type(found) is not dict:
            return None
        for key, value in found.items():
            if value is None:
                continue
            if key in _PLAIN_TEXT:
                if type(value) is not str:
                    return None
            elif key in _PLAIN_IDS:
                if type(value) is not str or not value.strip():
                    return None
            elif key in _RICH:
                return None
            else:
                continue
            fields[key] = value
    refs: dict[str, str | None] = {}
    for key, ref in payload.items():
        if key not in _REFS or ref is None:
            continue
        if type(ref) is not dict:
            return None
        ref_id = ref.get("id")
        if ref_id is not None and (type(ref_id) is not str or not ref_id.strip()):
            return None
        refs[key] = ref_id
    return PlainPayload(event_type, kind, fields, refs)
