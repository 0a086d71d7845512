"""The payload boundary: delivery bytes to a ``WebhookEvent``, or every problem with its path.

One private cattrs converter structures the decoded JSON into the domain's
``RawPayload`` (strict types, extra keys ignored); the domain then gives it
its meaning. Text that could not be stored is refused here, with its path:
a lone surrogate (``"\\ud83d"``, what a truncated emoji becomes) in any string
the payload carries, an event type over ``MAX_EVENT_TYPE_LENGTH`` characters,
an id over ``MAX_ID_LENGTH``. The receiver (to answer 400/422 at once) and the worker (on the
stored bytes) both read deliveries here, the one way there is; the app gives
both the same ``remembering_reader``, so a delivery is usually read once.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any

import cattrs
from cattrs.errors import ClassValidationError
from cattrs.gen import make_dict_structure_fn, override

from postflow_webhooks.domain.endpoint import MAX_EVENT_TYPE_LENGTH, MAX_ID_LENGTH
from postflow_webhooks.domain.errors import NotJsonError, PayloadError, Problem
from postflow_webhooks.domain.events import WebhookEvent, required_problems, unwrap
from postflow_webhooks.domain.payload import (
    Identifier,
    RawAuthor,
    RawPayload,
    RawRef,
    RawResource,
    json_type,
)


def _encodable(text: str) -> str:
    """``text`` if it can be stored as UTF-8; else ``ValueError`` naming the bad code point."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        point = ord(text[exc.start])
        raise ValueError(
            f"text that cannot be encoded as UTF-8: a lone surrogate U+{point:04X} at "
            f"character {exc.start} (a truncated emoji?); send valid UTF-8 text"
        ) from None
    return text


def _strict_str(value: object, _: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {json_type(value)}")
    return _encodable(value)


def _event_name(value: object, _: object) -> str | None:
    if value is None:
        return None
    text = _strict_str(value, str)
    if len(text) > MAX_EVENT_TYPE_LENGTH:
        raise ValueError(
            f"an event type of {len(text)} characters; the limit is {MAX_EVENT_TYPE_LENGTH}"
        )
    return text


def _identifier(value: object, _: object) -> Identifier:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError(f"expected a string or integer id, got {json_type(value)}")
    text = _encodable(str(value))
    if not text.strip():
        raise ValueError("expected a non-empty id")
    if len(text) > MAX_ID_LENGTH:
        raise ValueError(f"an id of {len(text)} characters; the limit is {MAX_ID_LENGTH}")
    return Identifier(text)


def _strict_int(value: object, _: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected an integer, got {json_type(value)}")
    return value


def _links(value: object, _: object) -> dict[str, str]:
    if not isinstance(value, dict):
        raise ValueError(f"expected an object, got {json_type(value)}")
    return {_encodable(k): _encodable(v) for k, v in value.items() if isinstance(v, str)}


def make_converter() -> cattrs.Converter:
    """The payload boundary's converter: strict types, extra keys allowed, every problem kept."""
    converter = cattrs.Converter(detailed_validation=True)
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
    # Optional fields go straight to their type's hook (cattrs' generic dispatch
    # costs more); each class's hook is generated after the hooks of its fields.
    for kind in (str, int, Identifier, dict[str, str]):
        _register_optional(converter, kind)
    for cls in (RawRef, RawAuthor, RawResource):
        base = converter.gen_structure_attrs_fromdict(cls)
        converter.register_structure_hook(cls, _objects_only(base, cls))
        _register_optional(converter, cls)
    names = override(struct_hook=_event_name)
    payload = make_dict_structure_fn(RawPayload, converter, event_type=names, type=names)
    converter.register_structure_hook(RawPayload, _objects_only(payload, RawPayload))
    return converter


def _register_optional(converter: cattrs.Converter, kind: Any) -> None:
    hook = converter.get_structure_hook(kind)

    def structure(value: object, hint: object) -> Any:
        return None if value is None else hook(value, kind)

    converter.register_structure_hook(kind | None, structure)


def _objects_only(base: Any, cls: type[Any]) -> Any:
    def structure(value: object, _: object) -> Any:
        if not isinstance(value, dict):
            raise ValueError(f"expected an object, got {json_type(value)}")
        return base(value, cls)

    return structure


_CONVERTER = make_converter()


def read_body(body: bytes) -> WebhookEvent:
    """The event in a delivery's raw bytes; ``NotJsonError`` or ``PayloadError`` if none."""
    if not body.strip():
        raise NotJsonError("the body is empty; a JSON object is expected")
    try:
        decoded = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise NotJsonError(f"the body is not JSON: {exc}") from None
    return read_payload(decoded)


def remembering_reader(size: int = 1024) -> Callable[[bytes], WebhookEvent]:
    """``read_body`` remembering its last ``size`` answers by body.

    The worker reads the same bytes the receiver read moments earlier; events
    are immutable, so the second read can be the first one's answer. A body
    that was refused is not remembered: it raises again.
    """
    return functools.lru_cache(maxsize=size)(read_body)


def read_payload(decoded: object) -> WebhookEvent:
    """The event in a decoded JSON payload, any dialect, wrapped or not."""
    root = "$"
    if isinstance(decoded, dict):
        decoded, root = unwrap(decoded)
    if not isinstance(decoded, dict):
        raise PayloadError((Problem(root, f"expected an object, got {json_type(decoded)}"),))
    try:
        raw = _CONVERTER.structure(decoded, RawPayload)
    except ClassValidationError as exc:
        raise PayloadError((*_problems(exc, root), *_missing_in(decoded, root))) from None
    return WebhookEvent.from_raw(raw, root)


def _problems(exc: ClassValidationError, root: str) -> tuple[Problem, ...]:
    found = []
    for message in cattrs.transform_error(exc, path=root, format_exception=_describe):
        text, _, path = message.rpartition(" @ ")
        found.append(Problem(path or root, text or message))
    return tuple(found)


def _describe(exc: BaseException, _type: object) -> str:
    if isinstance(exc, ValueError | TypeError):
        return str(exc)
    if isinstance(exc, KeyError):
        return "required"
    return "unreadable value"


def _missing_in(payload: dict[str, Any], root: str) -> list[Problem]:
    """What a payload the converter refused also lacks, read from the plain dict."""
    name = payload.get("event_type")
    if name is None:
        name = payload.get("type")
    resource = payload.get("resource", {})
    if not isinstance(resource, dict):
        return required_problems(name, resource, None, root)
    return required_problems(name, resource.get("id"), resource.get("file_id"), root)
