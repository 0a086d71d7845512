"""The studio's workflow settings: its review field and options, its Discord routes and mentions.

Each parser takes the value as a file holds it (JSON) or as an environment
variable holds it (JSON text) and raises ``ValueError`` naming what to fix,
with the JSON path inside the value (``[1].webhook_url``) and never a URL.
``app/settings.py`` registers them under their keys.
"""

from __future__ import annotations

import json
import re
from typing import Any

import attrs

from postflow_webhooks.domain.announce import Mentions, Route
from postflow_webhooks.domain.mapping import ReviewMapping, ReviewMappingError, ReviewOption
from postflow_webhooks.domain.records import Mention, MentionKind
from postflow_webhooks.domain.statuses import PostflowStatus

_MENTION = re.compile(
    r"^(?:(?P<kind>role|user):(?P<id>\d{1,20})|<@(?P<tag>[&!]?)(?P<tid>\d{1,20})>)$"
)
NO_DECISION = ("", "none", "no decision", "null")


@attrs.frozen
class RouteSetting:
    """One route as configured: a project (name or id), its Discord URL (a secret), mentions."""

    project: str
    webhook_url: str = attrs.field(repr=False)
    mentions: Mentions = ()

    def route(self) -> Route:
        """The domain's route (without the URL)."""
        return Route(self.project, self.mentions)


def _json(value: Any, expected: type, what: str) -> Any:
    """A value from a file as is, or decoded from an environment variable's JSON text."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not valid JSON ({exc.msg} at column {exc.colno}); {what}") from None
    if not isinstance(value, expected):
        raise ValueError(f"expected {what}")
    return value


def _status(text: Any, where: str, hint: str = "") -> PostflowStatus:
    if not isinstance(text, str):
        raise ValueError(f'{where}: expected a status name such as "REJECTED"')
    found = PostflowStatus.from_text(text) or PostflowStatus.__members__.get(text.strip().upper())
    if found is None:
        names = hint or "one of " + ", ".join(s.name for s in PostflowStatus)
        raise ValueError(f"{where}: unknown status {text!r}; use {names}")
    return found


def review_options(value: Any) -> tuple[ReviewOption, ...]:
    """``{"Changes Requested": "REJECTED", "On Hold": null}`` -> (option, status) pairs."""
    data = _json(value, dict, 'an object such as {"Changes Requested": "REJECTED"}')
    options: list[ReviewOption] = []
    for name, meaning in data.items():
        if not isinstance(name, str) or not name.strip():
            raise ValueError("an option name is empty")
        if meaning is None or (isinstance(meaning, str) and meaning.strip().lower() in NO_DECISION):
            options.append((name.strip(), None))
        else:
            hint = "WAITING_APPROVAL, APPROVED, REJECTED or null (no decision)"
            options.append((name.strip(), _status(meaning, f"option {name!r}", hint)))
    try:
        ReviewMapping(options=tuple(options))
    except ReviewMappingError as exc:
        raise ValueError(str(exc)) from None
    return tuple(options)


def review_field(value: Any) -> str:
    """A metadata field's name or id."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError('expected the review field\'s name (such as "Status") or its id')
    return value.strip()


def mention(value: Any, where: str) -> Mention:
    """``role:123``, ``user:123``, ``<@&123>`` or ``<@123>``."""
    found = _MENTION.match(value.strip()) if isinstance(value, str) else None
    if found is None:
        raise ValueError(
            f'{where}: expected "role:<id>" or "user:<id>" (a Discord id, digits only), '
            'or "<@&id>" / "<@id>"'
        )
    if found.group("kind"):
        return Mention(MentionKind(found.group("kind")), found.group("id"))
    kind = MentionKind.ROLE if found.group("tag") == "&" else MentionKind.USER
    return Mention(kind, found.group("tid"))


def mentions(value: Any, where: str = "") -> Mentions:
    """``{"REJECTED": "role:123", "WAITING_APPROVAL": ["user:4", "user:5"]}`` -> per status."""
    data = _json(value, dict, 'an object such as {"REJECTED": "role:123456789012345678"}')
    found: list[tuple[PostflowStatus, tuple[Mention, ...]]] = []
    for key, called in data.items():
        status = _status(key, f"{where}{key}")
        items = called if isinstance(called, list) else [called]
        found.append((status, tuple(mention(c, f"{where}{key}") for c in items)))
    return tuple(found)


def routes(value: Any) -> tuple[RouteSetting, ...]:
    """``[{"project": "Feature Film", "webhook_url": "https://...", "mentions": {...}}]``."""
    data = _json(value, list, 'a list such as [{"project": "...", "webhook_url": "https://..."}]')
    found: list[RouteSetting] = []
    seen: set[str] = set()
    for index, item in enumerate(data):
        where = f"[{index}]"
        if not isinstance(item, dict):
            raise ValueError(f"{where}: expected an object with project and webhook_url")
        unknown = sorted(set(item) - {"project", "webhook_url", "mentions"})
        if unknown:
            raise ValueError(
                f"{where}.{unknown[0]}: unknown key (use project, webhook_url, mentions)"
            )
        project = item.get("project")
        if not isinstance(project, str) or not project.strip():
            raise ValueError(f"{where}.project: expected the project's name or id")
        if project.strip().casefold() in seen:
            raise ValueError(f"{where}.project: {project.strip()!r} has a route already")
        seen.add(project.strip().casefold())
        url = item.get("webhook_url")
        if not isinstance(url, str) or not url.strip().lower().startswith(("https://", "http://")):
            raise ValueError(f"{where}.webhook_url: expected a Discord webhook URL (https://...)")
        called = mentions(item["mentions"], f"{where}.mentions.") if "mentions" in item else ()
        found.append(RouteSetting(project.strip(), url.strip(), called))
    return tuple(found)
