"""The studio's own workflow end to end: real receiver, fake Frame.io, fake Discord(s).

Review field and options from ``receiver.json``, renames, the comment lifecycle,
messages that say who and where, routes per project with mentions, and
version stacks.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import httpx
import pytest

from postflow_webhooks.app.composition import create_app
from postflow_webhooks.app.settings import Settings, load_settings
from tests.fakes.fake_discord import FakeDiscord
from tests.fakes.fake_frameio import FakeFrameio
from tests.integration.test_frameio_end_to_end import eventually, register_locally, upload
from tests.support import free_port, running_server

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(90)]


def studio_settings(fake: FakeFrameio, tmp_path: Path, receiver: dict[str, Any]) -> Settings:
    """Settings read the way a studio writes them: ``config/receiver.json`` plus the seed's file."""
    config = tmp_path / "config"
    config.mkdir(exist_ok=True)
    seed = {
        "client_id": fake.client_id,
        "client_secret": fake.client_secret,
        "account_id": fake.account_id,
        "workspace_id": fake.workspace_id,
    }
    (config / "frameio_config.json").write_text(json.dumps(seed), encoding="utf-8")
    endpoints = {
        "frameio_api_base": fake.url,
        "frameio_ims_token_url": f"{fake.url}/ims/token/v3",
    }
    (config / "receiver.json").write_text(json.dumps({**endpoints, **receiver}), encoding="utf-8")
    flags = {"port": free_port(), "data_dir": tmp_path / "data", "config_dir": config}
    return load_settings({}, flags)


def status(settings: Settings) -> dict[str, Any]:
    """GET /webhook-status."""
    return dict(httpx.get(f"{settings.local_url}/webhook-status").json())


def quiet(settings: Settings) -> bool:
    """Nothing left to apply or to send."""
    figures = status(settings)
    return figures["backlog"] == 0 and figures["notifications"]["pending"] == 0


async def deliver(fake: FakeFrameio, event_type: str, resource_id: str, **options: Any) -> None:
    """Have the fake deliver one event; it must be accepted."""
    answer = await fake.deliver(event_type, resource_id, **options)
    assert answer is not None and answer.status_code == 202, answer


def fields(message: dict[str, Any]) -> dict[str, str]:
    """A Discord message's embed fields, name -> value."""
    return {f["name"]: f["value"] for f in message["embeds"][0]["fields"]}


# --- 1. the review field and its options are configuration ------------------------------

STUDIO = {
    "review_field": "Review Stage",
    "review_options": {
        "Changes Requested": "REJECTED",
        "Client Approved": "APPROVED",
        "On Hold": None,
    },
}


async def test_a_studio_review_field_decides_as_configured(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """receiver.json's review field and options decide; an unknown option is warned about once."""
    caplog.set_level(logging.WARNING, logger="postflow_webhooks.worker")
    with FakeFrameio() as fake:
        fake.status_field_name = "Review Stage"
        file_id = fake.add_file("hero_v3.mov", status="transcoded")
        settings = studio_settings(fake, tmp_path, STUDIO)
        await register_locally(settings)
        with running_server(create_app(settings), settings.port):
            await deliver(fake, "file.ready", file_id)
            await eventually(lambda: upload(settings, file_id).get("status") == "COMPLETED")
            fake.set_status_field(file_id, "Changes Requested")
            await deliver(fake, "metadata.value.updated", file_id)
            await eventually(lambda: upload(settings, file_id).get("status") == "REJECTED")
            fake.set_status_field(file_id, "On Hold")
            await deliver(fake, "metadata.value.updated", file_id)
            fake.set_status_field(file_id, "Legal Hold")
            for _ in range(2):
                await deliver(fake, "metadata.value.updated", file_id)
            await eventually(lambda: status(settings)["backlog"] == 0)
            figures = status(settings)
            fake.set_status_field(file_id, "Client Approved")
            await deliver(fake, "metadata.value.updated", file_id)
            await eventually(lambda: upload(settings, file_id).get("status") == "APPROVED")
    assert figures["unmapped_review_options_seen"] == ["Legal Hold"]
    assert figures["review_field"]["field"] == "Review Stage"
    assert figures["review_field"]["options"]["Changes Requested"] == "REJECTED"
    assert figures["review_field"]["options"]["On Hold"] is None
    warnings = [r.getMessage() for r in caplog.records if "maps to no PostFlow status" in r.message]
    assert len(warnings) == 1 and "'Legal Hold'" in warnings[0]


# --- 2. renames ---------------------------------------------------------------------------


async def test_a_rename_reaches_a_decided_file_and_never_its_status(tmp_path: Path) -> None:
    """file.updated takes the new name from the API for an approved file; nothing is announced."""
    with FakeFrameio() as fake, FakeDiscord(bucket_limit=50) as discord:
        file_id = fake.add_file("cut_v1.mov", status="transcoded", status_field="Approved")
        settings = studio_settings(fake, tmp_path, {"discord_webhook_url": discord.webhook_url})
        await register_locally(settings)
        with running_server(create_app(settings), settings.port):
            await deliver(fake, "metadata.value.updated", file_id)
            await eventually(lambda: upload(settings, file_id).get("status") == "APPROVED")
            await eventually(lambda: quiet(settings))
            before = upload(settings, file_id)
            sent = len(discord.messages)
            fake.rename_file(file_id, "cut_v1_FINAL.mov")
            fake.set_status_field(file_id, "Needs Review")
            await deliver(fake, "file.updated", file_id)
            after = await eventually(
                lambda: (u := upload(settings, file_id)).get("name") == "cut_v1_FINAL.mov" and u
            )
            await eventually(lambda: quiet(settings))
    assert after["status"] == "APPROVED" and after["history"] == before["history"]
    assert len(discord.messages) == sent


# --- 3. the comment lifecycle --------------------------------------------------------------


async def test_comment_lifecycle_keeps_exact_counts_and_says_what_happened(
    tmp_path: Path,
) -> None:
    """Created, replied, resolved, reopened, edited, deleted: counts exact, each one announced."""
    with FakeFrameio() as fake, FakeDiscord(bucket_limit=50) as discord:
        file_id = fake.add_file("grade.mov", status="transcoded")
        receiver = {"discord_webhook_url": discord.webhook_url, "discord_comments": True}
        settings = studio_settings(fake, tmp_path, receiver)
        await register_locally(settings)

        def counts() -> tuple[int, int, str | None]:
            found = upload(settings, file_id)
            last = found.get("last_comment") or {}
            return found.get("comment_count", -1), found.get("open_comments", -1), last.get("text")

        with running_server(create_app(settings), settings.port):
            note = fake.add_comment(file_id, "Too warm", author="Bo")
            await deliver(fake, "comment.created", note, resource_type="comment")
            reply = fake.add_comment(file_id, "Agreed", author="Ana", parent_id=note)
            await deliver(fake, "comment.created", reply, resource_type="comment")
            await eventually(lambda: counts() == (2, 1, "Agreed"))
            fake.complete_comment(note)
            await deliver(fake, "comment.completed", note, resource_type="comment")
            await eventually(lambda: counts() == (2, 0, "Agreed"))
            fake.complete_comment(note, done=False)
            await deliver(fake, "comment.uncompleted", note, resource_type="comment")
            await eventually(lambda: counts() == (2, 1, "Agreed"))
            fake.edit_comment(reply, "Agreed, fixed in v4")
            await deliver(fake, "comment.updated", reply, resource_type="comment")
            await eventually(lambda: counts() == (2, 1, "Agreed, fixed in v4"))
            fake.remove_comment(note)
            await deliver(fake, "comment.deleted", note, resource_type="comment")
            await eventually(lambda: counts() == (0, 0, None))
            await eventually(lambda: quiet(settings))
    titles = [m["embeds"][0]["title"] for m in discord.messages if "Open comments" in fields(m)]
    said = [
        (m["embeds"][0]["title"].split(" · ")[0], fields(m).get("Open comments"))
        for m in discord.messages
        if "Open comments" in fields(m)
    ]
    assert said == [
        ("💬 New comment", "1"),
        ("💬 New comment", "1"),
        ("✅ Comment resolved", "0"),
        ("↩️ Comment reopened", "1"),
        ("✏️ Comment edited", "1"),
        ("🗑️ Comment deleted", "0"),
    ]
    assert len(titles) == 6 and all(t.endswith(" · grade.mov") for t in titles)


# --- 4. messages that say who and where, routes and mentions -------------------------------


async def test_messages_say_who_and_where_and_routes_call_exactly_the_configured(
    tmp_path: Path,
) -> None:
    """Per-project channels; project, user, version and link shown; only configured ids ping."""
    with (
        FakeFrameio() as fake,
        FakeDiscord(bucket_limit=50) as default,
        FakeDiscord(bucket_limit=50, webhook_id="223344556677889900") as film,
    ):
        fake.projects["p-film"] = "Feature Film"
        fake.users["u-ana"] = "Ana Lopez"
        in_film = fake.add_file("hero.mov", status="transcoded", project_id="p-film")
        elsewhere = fake.add_file("promo.mov", status="transcoded")
        receiver = {
            "discord_webhook_url": default.webhook_url,
            "discord_statuses": "WAITING_APPROVAL,REJECTED,APPROVED",
            "discord_mentions": {"WAITING_APPROVAL": "user:222222222222222222"},
            "discord_routes": [
                {
                    "project": "feature film",
                    "webhook_url": film.webhook_url,
                    "mentions": {"REJECTED": "role:111111111111111111"},
                }
            ],
        }
        settings = studio_settings(fake, tmp_path, receiver)
        await register_locally(settings)
        with running_server(create_app(settings), settings.port):
            for file_id, decision in ((in_film, "Needs Review"), (elsewhere, "Needs Review")):
                fake.set_status_field(file_id, decision)
                await deliver(fake, "metadata.value.updated", file_id, user_id="u-ana")
            fake.set_status_field(in_film, "Rejected")
            await deliver(fake, "metadata.value.updated", in_film, user_id="u-ana")
            await eventually(lambda: len(film.messages) == 2 and len(default.messages) == 1)
            await eventually(lambda: quiet(settings))
            figures = status(settings)["notifications"]
    assert [m["embeds"][0]["description"].split(" → ")[-1] for m in film.messages] == [
        "WAITING_APPROVAL ⏳",
        "REJECTED 🚫",
    ]
    rejected = film.messages[1]
    shown = fields(rejected)
    assert (shown["Project"], shown["By"], shown["Version"]) == ("Feature Film", "Ana Lopez", "1")
    assert (
        shown["Frame.io"] == f"[Open the file](https://next.frame.io/project/p-film/view/{in_film})"
    )
    assert rejected["allowed_mentions"] == {"parse": [], "roles": ["111111111111111111"]}
    assert film.pings == ["<@222222222222222222>", "<@&111111111111111111>"]
    (other,) = default.messages
    assert fields(other)["Project"] == "Project One" and other["embeds"][0]["title"] == "promo.mov"
    assert default.pings == ["<@222222222222222222>"]
    assert [(d["route"], d["destination_label"]) for d in figures["destinations"]] == [
        ("default", "discord webhook …/8899"),
        ("project:feature film", "discord webhook …/9900"),
    ]
    assert figures["sent"] == 3
    assert film.token not in json.dumps(figures) and default.token not in json.dumps(figures)


async def test_a_broken_or_throttled_channel_never_holds_the_others_back(tmp_path: Path) -> None:
    """One route's channel deleted, another rate limited: the default channel gets everything."""
    with (
        FakeFrameio() as fake,
        FakeDiscord(bucket_limit=50) as default,
        FakeDiscord(bucket_limit=50, webhook_id="300000000000000001") as gone,
        FakeDiscord(bucket_limit=50, webhook_id="300000000000000002") as slow,
    ):
        fake.projects.update({"p-gone": "Old Show", "p-slow": "Slow Show"})
        files = {
            "gone": fake.add_file("a.mov", status="transcoded", project_id="p-gone"),
            "slow": fake.add_file("b.mov", status="transcoded", project_id="p-slow"),
            "main": fake.add_file("c.mov", status="transcoded"),
        }
        gone.delete_webhook()
        slow.fail_next(429, count=1, retry_after=60.0)
        receiver = {
            "discord_webhook_url": default.webhook_url,
            "discord_routes": [
                {"project": "p-gone", "webhook_url": gone.webhook_url},
                {"project": "Slow Show", "webhook_url": slow.webhook_url},
            ],
        }
        settings = studio_settings(fake, tmp_path, receiver)
        await register_locally(settings)
        with running_server(create_app(settings), settings.port):
            for _ in range(2):
                for file_id in files.values():
                    fake.set_status_field(file_id, "Approved")
                    await deliver(fake, "file.ready", file_id)
                    await deliver(fake, "metadata.value.updated", file_id)
            await eventually(lambda: len(default.messages) == 2)
            figures = await eventually(
                lambda: (n := status(settings)["notifications"])["destination_broken"] and n
            )
    by_route = {d["route"]: d for d in figures["destinations"]}
    assert by_route["project:p-gone"]["destination"] == "broken"
    assert by_route["default"]["destination"] == "ok" and by_route["default"]["sent"] == 2
    assert by_route["project:Slow Show"]["rate_limited"] == 1 and slow.messages == []
    assert figures["pending"] == 4 and gone.messages == []
    assert [m["embeds"][0]["title"] for m in default.messages] == ["c.mov", "c.mov"]


# --- 5. version stacks ---------------------------------------------------------------------


async def test_a_version_stack_is_recorded_and_never_becomes_a_file(tmp_path: Path) -> None:
    """A version_stack delivery is accepted and counted; no record, the stacked file keeps its own."""
    with FakeFrameio() as fake:
        file_id = fake.add_file("shot.mov", status="transcoded")
        settings = studio_settings(fake, tmp_path, {})
        await register_locally(settings)
        with running_server(create_app(settings), settings.port):
            await deliver(fake, "file.ready", file_id)
            await eventually(lambda: upload(settings, file_id).get("status") == "COMPLETED")
            kept = upload(settings, file_id)
            for event in ("file.created", "file.versioned", "file.updated"):
                await deliver(fake, event, "vs-77", resource_type="version_stack")
            await eventually(lambda: status(settings)["backlog"] == 0)
            figures = status(settings)
            listing = httpx.get(f"{settings.local_url}/uploads").json()
            assert upload(settings, "vs-77") == {}
            assert upload(settings, file_id) == kept
    assert figures["last_event"]["outcome"] == "untracked_resource"
    assert figures["events_by_type"]["file.versioned"] == 1
    assert [u["file_id"] for u in listing["uploads"]] == [file_id]
    assert fake.calls("GET", "vs-77") == []
