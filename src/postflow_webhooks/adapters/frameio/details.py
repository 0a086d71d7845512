"""The file-details port over the V4 API: file, review field and comments, briefly cached.

The review field is the studio's (``review_field``: a field's name, compared
case- and space-insensitively, or its id); Frame.io's default is ``Status``.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable
from typing import TypeVar

from postflow_webhooks.adapters.clock import SystemClock
from postflow_webhooks.adapters.frameio.client import FrameioClient, JsonObject
from postflow_webhooks.adapters.frameio.errors import FrameioAuthError, FrameioError
from postflow_webhooks.domain.errors import DetailsUnavailableError
from postflow_webhooks.domain.events import Links
from postflow_webhooks.domain.ports import Clock
from postflow_webhooks.domain.records import CommentInfo, FileInfo

log = logging.getLogger("postflow_webhooks.frameio")

T = TypeVar("T")

STATUS_FIELD = "Status"
_FOLD = re.compile(r"[\s_\-]+")


def fold_field_name(name: str) -> str:
    """Case- and space-insensitive form of a metadata field name: " status " -> "status"."""
    return _FOLD.sub("", name).lower()


class FrameioFileDetails:
    """Looks files and comments up in Frame.io; fits the domain's ``FileDetails`` port."""

    def __init__(
        self,
        client: FrameioClient,
        *,
        account_id: str,
        cache_ttl: float = 5.0,
        clock: Clock | None = None,
        review_field: str = STATUS_FIELD,
    ) -> None:
        self._client = client
        self._account_id = account_id
        self._ttl = cache_ttl
        self._clock: Clock = clock or SystemClock()
        self.review_field = review_field
        self._files: dict[str, tuple[float, FileInfo]] = {}
        self._inflight: dict[str, asyncio.Future[FileInfo | None]] = {}

    async def file(
        self, file_id: str, account_id: str | None = None, *, fresh: bool = False
    ) -> FileInfo | None:
        """Name, status, project, links and review field; ``None`` if the file is gone."""
        account = account_id or self._account_id
        key = f"{account}/{file_id}"
        now = self._clock.now().timestamp()
        cached = self._files.get(key)
        if cached is not None and cached[0] > now and not fresh:
            return cached[1]
        running = self._inflight.get(key)
        if running is not None:
            return await asyncio.shield(running)
        future: asyncio.Future[FileInfo | None] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            info = await self._guard(self._fetch_file(account, file_id), f"file {file_id}")
        except BaseException as exc:
            if isinstance(exc, asyncio.CancelledError):
                exc = DetailsUnavailableError(f"Frame.io file {file_id}: lookup cancelled")
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters re-raise it themselves
            raise
        else:
            future.set_result(info)
        finally:
            self._inflight.pop(key, None)
        if info is not None and self._ttl > 0:
            self._files[key] = (now + self._ttl, info)
        return info

    async def comment(self, comment_id: str, account_id: str | None = None) -> CommentInfo | None:
        """A comment's text, author and file; ``None`` if it is gone."""
        account = account_id or self._account_id
        return await self._guard(self._fetch_comment(account, comment_id), f"comment {comment_id}")

    def forget(self, file_id: str | None = None) -> None:
        """Drop cached answers (one file's, or all) so the next lookup asks Frame.io."""
        if file_id is None:
            self._files.clear()
            return
        for key in [k for k in self._files if k.endswith(f"/{file_id}")]:
            del self._files[key]

    async def _guard(self, work: Awaitable[T], what: str) -> T:
        try:
            return await work
        except FrameioAuthError as exc:
            raise DetailsUnavailableError(
                f"Frame.io {what}: authentication failed: {exc.reason}"
            ) from exc
        except FrameioError as exc:
            raise DetailsUnavailableError(f"Frame.io {what}: {exc}") from exc

    async def _fetch_file(self, account: str, file_id: str) -> FileInfo | None:
        base = f"/v4/accounts/{account}/files/{file_id}"
        body = await self._client.get_json(base, params={"include": "media_links.original"})
        if body is None:
            return None
        data = data_of(body)
        metadata = await self._client.get_json(f"{base}/metadata", params={"show_null": "true"})
        links = _media_links(data)
        view_url = data.get("view_url") if isinstance(data.get("view_url"), str) else None
        project = data.get("project_id")
        return FileInfo(
            file_id=str(data.get("id") or file_id),
            name=text_of(data.get("name")),
            status=text_of(data.get("status")),
            review_status=self._review_value(metadata),
            view_url=view_url,
            links=links,
            project_id=str(project) if isinstance(project, str | int) and project else None,
        )

    async def _fetch_comment(self, account: str, comment_id: str) -> CommentInfo | None:
        body = await self._client.get_json(
            f"/v4/accounts/{account}/comments/{comment_id}", params={"include": "owner"}
        )
        if body is None:
            return None
        data = data_of(body)
        owner = data.get("owner")
        if not isinstance(owner, dict):
            owner = {}
        author = text_of(owner.get("name")) or text_of(owner.get("email"))
        file_id = data.get("file_id")
        parent = data.get("parent_id") or data.get("parent_comment_id")
        completed = data.get("completed")
        if not isinstance(completed, bool):
            completed = bool(data.get("completed_at")) if "completed_at" in data else None
        return CommentInfo(
            comment_id=str(data.get("id") or comment_id),
            file_id=str(file_id) if isinstance(file_id, str | int) else None,
            text=text_of(data.get("text")),
            author=author,
            parent_id=str(parent) if isinstance(parent, str | int) and parent else None,
            completed=completed,
        )

    def _review_value(self, metadata: JsonObject | None) -> str | None:
        for item in _metadata_items(metadata):
            if is_field(item, self.review_field, "field_definition_name", "field_definition_id"):
                return _select_value(item.get("value"))
        return None


def is_field(item: JsonObject, wanted: str, name_key: str, id_key: str) -> bool:
    """True when ``item`` is the field named ``wanted`` (folded) or whose id is ``wanted``."""
    name, ident = item.get(name_key), item.get(id_key)
    if isinstance(ident, str | int) and str(ident) == wanted.strip():
        return True
    return isinstance(name, str) and fold_field_name(name) == fold_field_name(wanted)


def data_of(body: JsonObject) -> JsonObject:
    """The ``data`` object of an API answer (or the answer itself when it has none)."""
    data = body.get("data")
    return data if isinstance(data, dict) else body


def text_of(value: object) -> str | None:
    """A non-blank string from an API answer, else ``None``."""
    return value if isinstance(value, str) and value.strip() else None


def _metadata_items(metadata: JsonObject | None) -> list[JsonObject]:
    if metadata is None:
        return []
    data: object = metadata.get("data", metadata)
    if isinstance(data, dict):
        data = data.get("metadata") or data.get("fields") or []
    return [item for item in data if isinstance(item, dict)] if isinstance(data, list) else []


def _select_value(value: object) -> str | None:
    if isinstance(value, list):
        for option in value:
            if isinstance(option, dict) and text_of(option.get("display_name")):
                return str(option["display_name"])
            if text_of(option):
                return str(option)
        return None
    if isinstance(value, dict):
        return text_of(value.get("display_name"))
    return text_of(value)


def _media_links(data: JsonObject) -> Links:
    found: dict[str, str] = {}
    view = data.get("view_url")
    if isinstance(view, str) and view:
        found["view_url"] = view
    media = data.get("media_links")
    if isinstance(media, dict):
        original = media.get("original")
        if isinstance(original, dict):
            url = original.get("download_url") or original.get("url")
            if isinstance(url, str) and url:
                found["original_url"] = url
        thumb = media.get("thumbnail")
        if isinstance(thumb, dict) and isinstance(thumb.get("url"), str):
            found["thumbnail_url"] = thumb["url"]
    return tuple(sorted(found.items()))
