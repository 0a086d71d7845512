"""Enrichment: asking Frame.io for what a delivery does not say.

``enrich`` asks the file-details port for the file (and comment) behind an
IDs-only delivery. ``Enricher`` adds what messages and routing need: the
file of a comment Frame.io no longer has (from the records, for a deleted
comment), and the names of the delivery's project and acting user (from the
name directory, best effort).
"""

from __future__ import annotations

import attrs

from postflow_webhooks.domain.comments import comment_key
from postflow_webhooks.domain.errors import DetailsUnavailableError
from postflow_webhooks.domain.events import EventKind, WebhookEvent
from postflow_webhooks.domain.ports import FileDetails, NameDirectory, RecordStore
from postflow_webhooks.domain.records import CommentInfo, Enrichment
from postflow_webhooks.domain.rules import target_file_id, wants_details, wants_fresh_details


async def enrich(details: FileDetails, event: WebhookEvent) -> Enrichment:
    """The file (and comment) behind ``event``; empty when the event needs nothing.

    Raises ``DetailsUnavailableError`` when Frame.io cannot answer now.
    """
    if not wants_details(event):
        return Enrichment()
    comment: CommentInfo | None = None
    file_id = event.file_id
    comment_id = event.comment.comment_id if event.comment else None
    if event.kind is EventKind.COMMENT and comment_id is not None:
        comment = await details.comment(comment_id, event.account_id)
        if file_id is None and comment is not None:
            file_id = comment.file_id
    if file_id is None:
        return Enrichment(comment=comment)
    info = await details.file(file_id, event.account_id, fresh=wants_fresh_details(event))
    return Enrichment(file=info, comment=comment)


class Enricher:
    """Everything the worker looks up for one event, in one call."""

    def __init__(
        self,
        details: FileDetails | None,
        records: RecordStore,
        directory: NameDirectory | None = None,
    ) -> None:
        self._details = details
        self._records = records
        self._directory = directory

    async def __call__(self, event: WebhookEvent) -> Enrichment:
        """The enrichment of ``event``; ``DetailsUnavailableError`` when Frame.io cannot answer."""
        found = Enrichment() if self._details is None else await enrich(self._details, event)
        if event.untracked_resource:
            return found
        found = await self._comment_file(event, found)
        if self._directory is None or event.kind in (EventKind.OTHER, EventKind.DELETED):
            return found  # nothing will be announced: no names needed
        project_id = event.project_id or (found.file.project_id if found.file else None)
        project_name = None
        if project_id is not None:
            project_name = await self._directory.project_name(project_id, event.account_id)
        actor_name = None
        if event.user_id is not None:
            actor_name = await self._directory.user_name(event.user_id, event.account_id)
        return attrs.evolve(found, project_name=project_name, actor_name=actor_name)

    async def _comment_file(self, event: WebhookEvent, found: Enrichment) -> Enrichment:
        """For a comment Frame.io no longer has (deleted), the file our records put it on."""
        said = event.comment
        if said is None or said.comment_id is None or target_file_id(event, found) is not None:
            return found
        record = await self._records.find_by_comment(comment_key(said.comment_id, None, None))
        if record is None:
            return found
        comment = found.comment or CommentInfo(said.comment_id)
        return attrs.evolve(found, comment=attrs.evolve(comment, file_id=record.file_id))


class BestEffortNames:
    """A name directory whose project lookups never hold a delivery (no route needs a name).

    Without routes a project's name only makes a message nicer, so a
    ``DetailsUnavailableError`` gives no name instead of a deferral.
    """

    def __init__(self, directory: NameDirectory) -> None:
        self._directory = directory

    async def project_name(self, project_id: str, account_id: str | None = None) -> str | None:
        """The project's name, or ``None`` when Frame.io cannot say now."""
        try:
            return await self._directory.project_name(project_id, account_id)
        except DetailsUnavailableError:
            return None

    async def user_name(self, user_id: str, account_id: str | None = None) -> str | None:
        """The user's name (best effort already)."""
        return await self._directory.user_name(user_id, account_id)
