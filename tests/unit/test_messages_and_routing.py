"""Messages that say who and where, routes by project, and mentions that call exactly whom."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from postflow_webhooks.adapters.discord.embed import build_message
from postflow_webhooks.domain.announce import AnnouncePolicy, Route
from postflow_webhooks.domain.records import (
    Mention,
    MentionKind,
    Notification,
    NotificationKind,
)
from postflow_webhooks.domain.statuses import PostflowStatus
from tests.fakes.fake_discord import pings, validate

AT = datetime(2024, 5, 1, 9, 30, tzinfo=UTC)
REVIEWERS = Mention(MentionKind.ROLE, "111111111111111111")
LEAD = Mention(MentionKind.USER, "222222222222222222")
FILM_LEAD = Mention(MentionKind.USER, "333333333333333333")


def note(**changes: object) -> Notification:
    """A REJECTED status notification for a file in project p-film, with ``changes`` applied."""
    values: dict[str, object] = {
        "kind": NotificationKind.STATUS,
        "file_id": "f-1",
        "at": AT,
        "event_type": "metadata.value.updated",
        "delivery_id": "d-1",
        "version": 3,
        "name": "hero_v3.mov",
        "old_status": PostflowStatus.WAITING_APPROVAL,
        "new_status": PostflowStatus.REJECTED,
        "link": "https://next.frame.io/project/p-film/view/f-1",
        "project_id": "p-film",
        "project_name": "Feature Film",
        "actor_id": "u-1",
        "actor_name": "Ana Lopez",
    }
    values.update(changes)
    return Notification(**values)  # type: ignore[arg-type]


def fields(body: dict[str, object]) -> dict[str, str]:
    """The embed's fields, name -> value."""
    (embed,) = body["embeds"]  # type: ignore[misc]
    return {f["name"]: f["value"] for f in embed["fields"]}


# --- who and where ---------------------------------------------------------------------


def test_a_status_message_says_project_who_version_and_link() -> None:
    """The embed names the project, the user who acted, the version and links the file."""
    body = build_message(note())
    shown = fields(body)
    assert shown["Project"] == "Feature Film"
    assert shown["By"] == "Ana Lopez"
    assert shown["Version"] == "3"
    assert shown["Frame.io"] == "[Open the file](https://next.frame.io/project/p-film/view/f-1)"
    assert body["embeds"][0]["url"] == "https://next.frame.io/project/p-film/view/f-1"  # type: ignore[index]
    assert validate(body) == {}


def test_ids_stand_in_for_names_frameio_would_not_give() -> None:
    """Without names, the project and user ids are shown; without either, no field at all."""
    assert fields(build_message(note(project_name=None, actor_name=None)))["Project"] == "p-film"
    bare = fields(
        build_message(note(project_name=None, project_id=None, actor_id=None, actor_name=None))
    )
    assert "Project" not in bare and "By" not in bare


@pytest.mark.parametrize(
    ("action", "title"),
    [
        ("created", "💬 New comment"),
        ("updated", "✏️ Comment edited"),
        ("completed", "✅ Comment resolved"),
        ("uncompleted", "↩️ Comment reopened"),
        ("deleted", "🗑️ Comment deleted"),
    ],
)
def test_a_comment_message_says_what_happened(action: str, title: str) -> None:
    """Each comment action has its own title, with the open count and who acted."""
    body = build_message(
        note(
            kind=NotificationKind.COMMENT,
            comment_action=action,
            comment_text="Grade is too warm",
            comment_author="Bo",
            open_comments=2,
        )
    )
    (embed,) = body["embeds"]  # type: ignore[misc]
    assert embed["title"] == f"{title} · hero_v3.mov"
    shown = fields(body)
    assert (shown["Open comments"], shown["By"], shown["Project"]) == (
        "2",
        "Ana Lopez",
        "Feature Film",
    )
    assert validate(body) == {}


def test_the_comment_author_is_not_repeated_as_the_actor() -> None:
    """When the author resolved their own note, "By" is left out (the author is shown)."""
    body = build_message(
        note(kind=NotificationKind.COMMENT, comment_action="completed", comment_author="Ana Lopez")
    )
    assert "By" not in fields(body)


# --- mentions ---------------------------------------------------------------------------


def test_mentions_ping_exactly_the_configured_role_and_user() -> None:
    """content calls the role and the user; allowed_mentions allows those ids and nothing else."""
    body = build_message(note(mentions=(REVIEWERS, LEAD)))
    assert body["content"] == "<@&111111111111111111> <@222222222222222222>"
    assert body["allowed_mentions"] == {
        "parse": [],
        "roles": ["111111111111111111"],
        "users": ["222222222222222222"],
    }
    assert validate(body) == {}
    assert pings(body) == ["<@&111111111111111111>", "<@222222222222222222>"]


@given(st.text(max_size=60))
def test_no_text_from_frameio_can_ping_anyone_else(text: str) -> None:
    """Whatever a file name or comment says (@everyone, <@&999>), only the configured id pings."""
    hostile = f"@everyone <@&999> <@!888> @here {text}"
    body = build_message(
        note(name=hostile, comment_text=hostile, actor_name=hostile, mentions=(REVIEWERS,))
    )
    assert pings(body) == ["<@&111111111111111111>"]
    quiet = build_message(note(name=hostile, project_name=hostile))
    assert quiet["allowed_mentions"] == {"parse": []} and "content" not in quiet
    assert pings(quiet) == []


# --- routing ----------------------------------------------------------------------------

POLICY = AnnouncePolicy(
    enabled=True,
    routes=(
        Route("Feature Film", mentions=((PostflowStatus.REJECTED, (FILM_LEAD,)),)),
        Route("p-commercial"),
    ),
    mentions=(
        (PostflowStatus.REJECTED, (REVIEWERS,)),
        (PostflowStatus.WAITING_APPROVAL, (LEAD,)),
    ),
)


def test_a_project_route_matches_by_name_case_and_spaces_ignored() -> None:
    """A file in "feature film " goes to the Feature Film route, with the route's own mention."""
    addressed = POLICY.address(note(project_name=" feature FILM "))
    assert addressed is not None
    assert addressed.destination == "project:Feature Film"
    assert addressed.mentions == (FILM_LEAD,)


def test_a_project_route_matches_by_id() -> None:
    """A route naming a project id takes that project's files, whatever its name."""
    addressed = POLICY.address(note(project_id="p-commercial", project_name="Spot 30s"))
    assert addressed is not None
    assert (addressed.destination, addressed.mentions) == ("project:p-commercial", (REVIEWERS,))


def test_other_projects_go_to_the_default_destination_with_the_global_mentions() -> None:
    """An unrouted project uses the default destination; mentions follow the status."""
    waiting = POLICY.address(
        note(project_id="p-x", project_name="Docu", new_status=PostflowStatus.WAITING_APPROVAL)
    )
    approved = POLICY.address(
        note(project_id="p-x", project_name="Docu", new_status=PostflowStatus.APPROVED)
    )
    assert waiting is not None and approved is not None
    assert (waiting.destination, waiting.mentions) == ("default", (LEAD,))
    assert (approved.destination, approved.mentions) == ("default", ())


def test_comments_never_mention_anyone() -> None:
    """Mentions are per status: a comment notification calls nobody."""
    addressed = AnnouncePolicy(enabled=True, comments=True, mentions=POLICY.mentions).address(
        note(kind=NotificationKind.COMMENT, comment_action="created")
    )
    assert addressed is not None and addressed.mentions == ()


def test_without_a_default_destination_only_routed_projects_are_announced() -> None:
    """Routes alone: a routed project's change is queued, another project's is skipped."""
    routes_only = AnnouncePolicy(enabled=False, routes=POLICY.routes)
    assert routes_only.address(note()) is not None
    assert routes_only.address(note(project_id="p-x", project_name="Docu")) is None
    assert routes_only.skip_reason(note(project_id="p-x", project_name="Docu")) == (
        "no route for this project and no default destination"
    )


def test_the_status_filter_applies_to_every_route() -> None:
    """A status not announced is skipped whichever route the project has."""
    narrow = AnnouncePolicy(
        enabled=True, statuses=frozenset({PostflowStatus.APPROVED}), routes=POLICY.routes
    )
    assert narrow.address(note()) is None
    assert narrow.address(note(new_status=PostflowStatus.APPROVED)) is not None
