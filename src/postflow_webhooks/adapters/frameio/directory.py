"""Frame.io's names for ids (projects, users) and the review field's options, cached.

Names make messages readable ("Feature Film", "Ana Lopez"); they are looked
up once and kept for ``ttl`` seconds (a missing one too), so a busy project
costs one call per ``ttl``. A project that cannot be read because Frame.io is
down raises ``DetailsUnavailableError`` (when routes need the name the
delivery waits; ``service.enrichment.BestEffortNames`` swallows it otherwise);
a user name is best effort and never raises.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from postflow_webhooks.adapters.clock import SystemClock
from postflow_webhooks.adapters.frameio.client import FrameioClient
from postflow_webhooks.adapters.frameio.details import data_of, is_field, text_of
from postflow_webhooks.adapters.frameio.errors import (
    FrameioApiError,
    FrameioAuthError,
    FrameioError,
)
from postflow_webhooks.domain.errors import DetailsUnavailableError
from postflow_webhooks.domain.ports import Clock

log = logging.getLogger("postflow_webhooks.frameio")

NAMES_TTL = 600.0
# Frame.io serves a user by id on its experimental API version only.
EXPERIMENTAL = {"api-version": "experimental"}


class FrameioDirectory:
    """Project and user names, and metadata field options; fits ``NameDirectory``."""

    def __init__(
        self,
        client: FrameioClient,
        *,
        account_id: str,
        ttl: float = NAMES_TTL,
        clock: Clock | None = None,
    ) -> None:
        self._client = client
        self._account_id = account_id
        self._ttl = ttl
        self._clock: Clock = clock or SystemClock()
        self._names: dict[str, tuple[float, str | None]] = {}
        self._refused: set[str] = set()

    async def project_name(self, project_id: str, account_id: str | None = None) -> str | None:
        """The project's name; ``None`` if it is gone or hidden from us."""
        account = account_id or self._account_id
        path = f"/v4/accounts/{account}/projects/{project_id}"
        return await self._cached(f"project:{path}", lambda: self._project(path))

    async def user_name(self, user_id: str, account_id: str | None = None) -> str | None:
        """The user's name (or e-mail); ``None`` whenever Frame.io will not say."""
        account = account_id or self._account_id
        path = f"/v4/accounts/{account}/users/{user_id}"
        try:
            return await self._cached(f"user:{path}", lambda: self._user(path))
        except Exception as exc:  # a name is a nicety: never hold a delivery for it
            log.info("no name for Frame.io user %s: %s", user_id, exc)
            return None

    async def field_options(self, field: str) -> tuple[str, list[str]] | None:
        """The account's metadata field ``field`` (name or id): its name and option names.

        ``None`` when the account has no such field. Raises ``FrameioError``.
        """
        path = f"/v4/accounts/{self._account_id}/metadata/field_definitions"
        async for item in self._client.paginate(path):
            if is_field(item, field, "name", "id"):
                config = item.get("field_configuration")
                options = config.get("options") if isinstance(config, dict) else None
                names = [
                    str(o["display_name"])
                    for o in options or []
                    if isinstance(o, dict) and text_of(o.get("display_name"))
                ]
                return str(item.get("name") or field), names
        return None

    async def _cached(self, key: str, fetch: Callable[[], Awaitable[str | None]]) -> str | None:
        now = self._clock.now().timestamp()
        found = self._names.get(key)
        if found is not None and found[0] > now:
            return found[1]
        name = await fetch()
        self._names[key] = (now + self._ttl, name)
        return name

    async def _project(self, path: str) -> str | None:
        try:
            body = await self._client.get_json(path)
        except FrameioAuthError as exc:
            raise DetailsUnavailableError(f"Frame.io project: {exc.reason}") from exc
        except FrameioApiError as exc:
            if exc.transient:
                raise DetailsUnavailableError(f"Frame.io project: {exc}") from exc
            self._refuse(path, exc)
            return None
        except FrameioError as exc:
            raise DetailsUnavailableError(f"Frame.io project: {exc}") from exc
        return None if body is None else text_of(data_of(body).get("name"))

    async def _user(self, path: str) -> str | None:
        try:
            body = await self._client.get_json(path, headers=EXPERIMENTAL)
        except FrameioApiError as exc:
            if exc.transient:
                raise
            self._refuse(path, exc)
            return None
        if body is None:
            return None
        data = data_of(body)
        nested = data.get("user")
        user = nested if isinstance(nested, dict) else data
        return text_of(user.get("name")) or text_of(user.get("email"))

    def _refuse(self, path: str, exc: FrameioApiError) -> None:
        """Frame.io refuses to name this: say so once, then quietly go without."""
        if path not in self._refused:
            self._refused.add(path)
            log.warning("Frame.io will not name %s (%s); messages go without it", path, exc)
