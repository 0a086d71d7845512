"""The Execute Webhook body: one embed per notification, always within Discord's limits.

Texts are measured in UTF-16 code units, which is never less than the count in
code points, so a cut that fits here fits Discord however it counts. Over a
limit a text is cut and ends with an ellipsis; a body is never refused.

Each message says who and where: the project, the user who acted, the file's
version and a link to it in Frame.io. A notification's mentions (decided when
it was queued) go in ``content``, and ``allowed_mentions`` allows exactly
those roles and users and nothing else, so no text from Frame.io (a file
named ``@everyone.mov``, a comment quoting a role) can ever ping anyone.
"""

from __future__ import annotations

from typing import Any

from postflow_webhooks.domain.alerts import AlertState
from postflow_webhooks.domain.records import Mention, MentionKind, Notification, NotificationKind
from postflow_webhooks.domain.statuses import PostflowStatus

ELLIPSIS = "…"

TITLE_LIMIT = 256
DESCRIPTION_LIMIT = 4096
FIELD_NAME_LIMIT = 256
FIELD_VALUE_LIMIT = 1024
FOOTER_LIMIT = 2048
AUTHOR_LIMIT = 256
EMBED_TOTAL_LIMIT = 6000
USERNAME_LIMIT = 80
URL_LIMIT = 2048

STATUS_COLOURS: dict[PostflowStatus, int] = {
    PostflowStatus.UPLOADING: 0x3498DB,
    PostflowStatus.PROCESSING: 0xF1C40F,
    PostflowStatus.COMPLETED: 0x2ECC71,
    PostflowStatus.FAILED: 0xE74C3C,
    PostflowStatus.WAITING_APPROVAL: 0xE67E22,
    PostflowStatus.APPROVED: 0x1ABC9C,
    PostflowStatus.REJECTED: 0x992D22,
}
COMMENT_COLOUR = 0x5865F2
UNKNOWN_COLOUR = 0x95A5A6
ALERT_COLOUR = 0xE74C3C
RESOLVED_COLOUR = 0x2ECC71

NO_MENTIONS: dict[str, list[str]] = {"parse": []}
MENTIONS_LIMIT = 100  # Discord allows at most 100 ids of each kind

COMMENT_TITLES = {
    "created": "💬 New comment",
    "updated": "✏️ Comment edited",
    "completed": "✅ Comment resolved",
    "uncompleted": "↩️ Comment reopened",
    "deleted": "🗑️ Comment deleted",
}


def text_length(text: str) -> int:
    """Length as Discord may count it at most: UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def truncate(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` (UTF-16 units) ending with an ellipsis when it was longer."""
    if text_length(text) <= limit:
        return text
    if limit <= 0:
        return ""
    budget = limit - 1
    kept: list[str] = []
    used = 0
    for char in text:
        size = 2 if ord(char) > 0xFFFF else 1
        if used + size > budget:
            break
        kept.append(char)
        used += size
    return "".join(kept).rstrip() + ELLIPSIS


def build_message(
    notification: Notification,
    *,
    username: str | None = None,
    avatar_url: str | None = None,
) -> dict[str, Any]:
    """The JSON body announcing ``notification``: one embed; only its own mentions ping."""
    if notification.kind is NotificationKind.COMMENT:
        embed = comment_embed(notification)
    elif notification.kind is NotificationKind.ALERT:
        embed = alert_embed(notification)
    else:
        embed = status_embed(notification)
    body: dict[str, Any] = {"embeds": [fit_total(embed)], **mention_parts(notification.mentions)}
    if username:
        body["username"] = truncate(username, USERNAME_LIMIT)
    if avatar_url and _is_http_url(avatar_url):
        body["avatar_url"] = avatar_url
    return body


def mention_parts(mentions: tuple[Mention, ...]) -> dict[str, Any]:
    """``content`` calling ``mentions`` and ``allowed_mentions`` allowing exactly them."""
    roles = _ids(mentions, MentionKind.ROLE)
    users = _ids(mentions, MentionKind.USER)
    if not roles and not users:
        return {"allowed_mentions": NO_MENTIONS}
    allowed: dict[str, list[str]] = {"parse": []}
    if roles:
        allowed["roles"] = roles
    if users:
        allowed["users"] = users
    content = " ".join([*(f"<@&{i}>" for i in roles), *(f"<@{i}>" for i in users)])
    return {"content": content, "allowed_mentions": allowed}


def _ids(mentions: tuple[Mention, ...], kind: MentionKind) -> list[str]:
    found = [m.id for m in mentions if m.kind is kind and m.id.isdigit()]
    return list(dict.fromkeys(found))[:MENTIONS_LIMIT]


def file_title(notification: Notification) -> str:
    """The file's name, else its Frame.io id."""
    name = (notification.name or "").strip()
    return name or f"File {notification.file_id}"


def status_line(notification: Notification) -> str:
    """``old → new`` with PostFlow's labels, or just the new label for a new file."""
    new = notification.new_status.value if notification.new_status else "no status"
    if notification.old_status is None:
        return f"New file → {new}"
    return f"{notification.old_status.value} → {new}"


def status_embed(notification: Notification) -> dict[str, Any]:
    """The embed for a status change: title, old → new, colour, link, version, time."""
    status = notification.new_status
    colour = STATUS_COLOURS[status] if status is not None else UNKNOWN_COLOUR
    embed: dict[str, Any] = {
        "title": truncate(file_title(notification), TITLE_LIMIT),
        "description": truncate(status_line(notification), DESCRIPTION_LIMIT),
        "color": colour,
        "fields": [
            *_where_and_who(notification),
            _field("Version", str(notification.version)),
            _field("Event", notification.event_type),
            *_link_field(notification.link),
        ],
        "footer": {"text": truncate(f"PostFlow · file {notification.file_id}", FOOTER_LIMIT)},
        "timestamp": notification.at.isoformat(),
    }
    _add_link(embed, notification.link)
    return embed


def comment_embed(notification: Notification) -> dict[str, Any]:
    """The embed for a comment: what happened to it, author, text, file, status, link, time."""
    author = (notification.comment_author or "").strip() or "Someone"
    text = (notification.comment_text or "").strip() or "(no text)"
    status = notification.new_status.value if notification.new_status else "no status"
    action = COMMENT_TITLES.get(notification.comment_action or "created", COMMENT_TITLES["created"])
    fields = [*_where_and_who(notification, author), _field("Status", status)]
    fields.append(_field("Version", str(notification.version)))
    if notification.open_comments is not None:
        fields.append(_field("Open comments", str(notification.open_comments)))
    embed: dict[str, Any] = {
        "author": {"name": truncate(author, AUTHOR_LIMIT)},
        "title": truncate(f"{action} · {file_title(notification)}", TITLE_LIMIT),
        "description": truncate(text, DESCRIPTION_LIMIT),
        "color": COMMENT_COLOUR,
        "fields": [*fields, *_link_field(notification.link)],
        "footer": {"text": truncate(f"PostFlow · file {notification.file_id}", FOOTER_LIMIT)},
        "timestamp": notification.at.isoformat(),
    }
    _add_link(embed, notification.link)
    return embed


def alert_embed(notification: Notification) -> dict[str, Any]:
    """The embed for an alert about the receiver: started (red) or ended (green)."""
    alert = notification.alert
    if alert is None:
        title, detail, ended, fields = notification.name or "Receiver alert", "", False, []
    else:
        ended = alert.state is AlertState.ENDED
        title, detail = alert.title, alert.detail
        fields = [_field("Since", alert.started_at.isoformat(timespec="seconds"))]
        if alert.ended_at is not None:
            minutes = (alert.ended_at - alert.started_at).total_seconds() / 60
            fields.append(_field("Lasted", f"{minutes:.1f} min"))
        fields.append(_field("Reason", alert.reason))
    heading = f"✅ Resolved: {title}" if ended else f"🚨 {title}"
    return {
        "title": truncate(heading, TITLE_LIMIT),
        "description": truncate(detail or "-", DESCRIPTION_LIMIT),
        "color": RESOLVED_COLOUR if ended else ALERT_COLOUR,
        "fields": fields,
        "footer": {"text": "PostFlow webhook receiver"},
        "timestamp": notification.at.isoformat(),
    }


def _where_and_who(notification: Notification, author: str | None = None) -> list[dict[str, Any]]:
    """The project the file is in and the user who acted (unless that is the comment's author)."""
    fields = []
    project = notification.project_name or notification.project_id
    if project:
        fields.append(_field("Project", project))
    actor = notification.actor_name or notification.actor_id
    if actor and actor != author:
        fields.append(_field("By", actor))
    return fields


def _link_field(link: str | None) -> list[dict[str, Any]]:
    if not link or not _is_http_url(link) or len(link) > FIELD_VALUE_LIMIT - 20:
        return []
    return [_field("Frame.io", f"[Open the file]({link})")]


def embed_length(embed: dict[str, Any]) -> int:
    """The characters Discord sums towards the 6000 total for one embed."""
    total = text_length(embed.get("title", "")) + text_length(embed.get("description", ""))
    for field in embed.get("fields", ()):
        total += text_length(field["name"]) + text_length(field["value"])
    total += text_length(embed.get("footer", {}).get("text", ""))
    total += text_length(embed.get("author", {}).get("name", ""))
    return total


def fit_total(embed: dict[str, Any]) -> dict[str, Any]:
    """Shorten the description, then the title, until the embed fits the 6000 total."""
    excess = embed_length(embed) - EMBED_TOTAL_LIMIT
    for key in ("description", "title"):
        if excess <= 0:
            break
        text = embed.get(key, "")
        keep = max(text_length(text) - excess, 1)
        embed[key] = truncate(text, keep)
        excess = embed_length(embed) - EMBED_TOTAL_LIMIT
    return embed


def _field(name: str, value: str) -> dict[str, Any]:
    return {
        "name": truncate(name, FIELD_NAME_LIMIT),
        "value": truncate(value or "-", FIELD_VALUE_LIMIT),
        "inline": True,
    }


def _add_link(embed: dict[str, Any], link: str | None) -> None:
    if link and _is_http_url(link) and len(link) <= URL_LIMIT:
        embed["url"] = link


def _is_http_url(text: str) -> bool:
    return text.startswith(("https://", "http://")) and " " not in text
