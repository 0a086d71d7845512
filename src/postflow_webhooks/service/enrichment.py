"""Enrichment: asking the file-details port for what an IDs-only delivery lacks."""

from __future__ import annotations

from postflow_webhooks.domain.events import EventKind, WebhookEvent
from postflow_webhooks.domain.ports import FileDetails
from postflow_webhooks.domain.records import CommentInfo, Enrichment
from postflow_webhooks.domain.rules import wants_details, wants_fresh_details


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
