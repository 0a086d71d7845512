"""The Discord body, settings, the announce policy and rate-limit state: pure, no network."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from postflow_webhooks.adapters.discord.config import DiscordConfig
from postflow_webhooks.adapters.discord.embed import (
    COMMENT_COLOUR,
    ELLIPSIS,
    STATUS_COLOURS,
    build_message,
    embed_length,
    text_length,
    truncate,
)
from postflow_webhooks.adapters.discord.notifier import destination_key, redact
from postflow_webhooks.adapters.discord.ratelimit import RateLimitState, retry_after_from
from postflow_webhooks.app.composition import build_notifier
from postflow_webhooks.app.settings import Settings, SettingsError, load_settings
from postflow_webhooks.domain.announce import ALL_STATUSES, AnnouncePolicy
from postflow_webhooks.domain.records import Notification, NotificationKind
from postflow_webhooks.domain.statuses import PostflowStatus
from tests.fakes.fake_discord import validate

AT = datetime(2024, 5, 1, 9, 30, tzinfo=UTC)
SECRET_URL = "https://discord.com/api/v10/webhooks/987654321012345678/s3cr3t-T0ken-abcdefghijklmnop"


def status_note(**changes: object) -> Notification:
    """A status notification for shot_010.mov, with ``changes`` applied."""
    values: dict[str, object] = {
        "kind": NotificationKind.STATUS,
        "file_id": "f-123",
        "at": AT,
        "event_type": "file.ready",
        "delivery_id": "d-1",
        "version": 2,
        "name": "shot_010.mov",
        "old_status": PostflowStatus.PROCESSING,
        "new_status": PostflowStatus.COMPLETED,
        "link": "https://next.frame.io/project/p/view/f-123",
        "id": 1,
    }
    values.update(changes)
    return Notification(**values)  # type: ignore[arg-type]


def comment_note(**changes: object) -> Notification:
    """A comment notification by Ana, with ``changes`` applied."""
    base = {
        "kind": NotificationKind.COMMENT,
        "event_type": "comment.created",
        "old_status": None,
        "new_status": PostflowStatus.WAITING_APPROVAL,
        "comment_text": "Please fix the colour in the last shot",
        "comment_author": "Ana",
    }
    base.update(changes)
    return status_note(**base)


def test_status_embed_shows_name_labels_colour_link_version_and_time() -> None:
    """A status change embed carries the file name, old → new labels, colour, link, version, time."""
    body = build_message(status_note())
    (embed,) = body["embeds"]
    assert embed["title"] == "shot_010.mov"
    assert embed["description"] == "PROCESSING ⚙️ → COMPLETED 🎉"
    assert embed["color"] == STATUS_COLOURS[PostflowStatus.COMPLETED]
    assert embed["url"] == "https://next.frame.io/project/p/view/f-123"
    assert {"name": "Version", "value": "2", "inline": True} in embed["fields"]
    assert embed["timestamp"] == "2024-05-01T09:30:00+00:00"
    assert body["allowed_mentions"] == {"parse": []}
    assert validate(body) == {}


def test_every_status_has_its_own_colour_and_exact_label() -> None:
    """Each PostFlow status gets a distinct colour and its label exactly as PostFlow writes it."""
    colours = set()
    for status in PostflowStatus:
        (embed,) = build_message(status_note(new_status=status))["embeds"]
        assert embed["description"].endswith(status.value)
        colours.add(embed["color"])
    assert len(colours) == len(PostflowStatus)


def test_unknown_name_falls_back_to_the_file_id_and_new_files_say_so() -> None:
    """Without a name the title shows the file id; a first status reads "New file → …"."""
    (embed,) = build_message(status_note(name=None, old_status=None))["embeds"]
    assert embed["title"] == "File f-123"
    assert embed["description"] == "New file → COMPLETED 🎉"


def test_missing_or_odd_link_is_left_out() -> None:
    """Only http(s) links become the embed URL."""
    assert "url" not in build_message(status_note(link=None))["embeds"][0]
    assert "url" not in build_message(status_note(link="javascript:alert(1)"))["embeds"][0]


def test_comment_embed_shows_author_and_text() -> None:
    """A comment notification shows who wrote it and what, with the file's status."""
    (embed,) = build_message(comment_note())["embeds"]
    assert embed["author"] == {"name": "Ana"}
    assert embed["description"] == "Please fix the colour in the last shot"
    assert embed["color"] == COMMENT_COLOUR
    assert "shot_010.mov" in embed["title"]
    assert {"name": "Status", "value": "WAITING_APPROVAL ⏳", "inline": True} in embed["fields"]


def test_oversized_name_and_comment_are_cut_with_an_ellipsis() -> None:
    """A 5000-character name and a 10000-character comment are truncated, never rejected."""
    body = build_message(
        comment_note(name="n" * 5000, comment_text="c" * 10_000, comment_author="a" * 900)
    )
    (embed,) = body["embeds"]
    assert text_length(embed["title"]) == 256 and embed["title"].endswith(ELLIPSIS)
    assert embed["description"].endswith(ELLIPSIS)
    assert len(embed["author"]["name"]) == 256
    assert embed_length(embed) <= 6000
    assert validate(body) == {}


def test_everyone_file_name_pings_nobody() -> None:
    """A file named ``@everyone.mov`` stays in the embed and mentions are disabled."""
    body = build_message(status_note(name="@everyone.mov"))
    assert body["allowed_mentions"] == {"parse": []}
    assert "content" not in body
    assert body["embeds"][0]["title"] == "@everyone.mov"


def test_username_and_avatar_are_optional_and_bounded() -> None:
    """A username is cut to 80 characters; an avatar URL is passed only when it is http(s)."""
    body = build_message(status_note(), username="P" * 200, avatar_url="https://x.test/a.png")
    assert len(body["username"]) == 80
    assert body["avatar_url"] == "https://x.test/a.png"
    plain = build_message(status_note())
    assert "username" not in plain and "avatar_url" not in plain


def test_truncate_counts_utf16_units_and_never_splits_a_character() -> None:
    """Astral emoji count twice; a cut keeps whole characters and ends with an ellipsis."""
    assert truncate("short", 10) == "short"
    cut = truncate("🎬" * 10, 7)
    assert cut == "🎬🎬🎬" + ELLIPSIS
    assert text_length(cut) <= 7


texts = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=7000)


@given(name=texts, comment=texts, author=texts, event=st.text(max_size=3000))
def test_any_texts_give_a_body_discord_accepts(
    name: str, comment: str, author: str, event: str
) -> None:
    """Whatever the texts, the body passes Discord's limits (fake Discord's validator)."""
    note = comment_note(name=name, comment_text=comment, comment_author=author, event_type=event)
    assert validate(build_message(note)) == {}
    assert validate(build_message(status_note(name=name, event_type=event))) == {}


def settings_from(environ: dict[str, str], tmp_path: Path) -> Settings:
    """The settings the composition root reads from these variables."""
    return load_settings({"POSTFLOW_CONFIG_DIR": str(tmp_path), **environ})


def announce_policy(settings: Settings) -> AnnouncePolicy:
    """The announce policy for ``settings``, as the composition root builds it."""
    return AnnouncePolicy(
        enabled=build_notifier(settings) is not None,
        statuses=frozenset(settings.discord_statuses),
        comments=settings.discord_comments,
    )


def test_config_reads_environ_and_hides_the_url(tmp_path: Path) -> None:
    """Settings come from POSTFLOW_DISCORD_* keys; the URL never shows in a repr or a label."""
    settings = settings_from(
        {
            "POSTFLOW_DISCORD_WEBHOOK_URL": SECRET_URL,
            "POSTFLOW_DISCORD_STATUSES": "completed, FAILED,APPROVED ✅",
            "POSTFLOW_DISCORD_COMMENTS": "true",
            "POSTFLOW_DISCORD_USERNAME": "PostFlow",
        },
        tmp_path,
    )
    policy = announce_policy(settings)
    assert policy.enabled
    assert policy.statuses == {
        PostflowStatus.COMPLETED,
        PostflowStatus.FAILED,
        PostflowStatus.APPROVED,
    }
    assert policy.comments and settings.discord_username == "PostFlow"
    notifier = build_notifier(settings)
    assert notifier is not None
    assert "s3cr3t" not in notifier.label and "s3cr3t" not in notifier.key
    config = DiscordConfig(webhook_url=SECRET_URL, username=settings.discord_username)
    assert "s3cr3t" not in repr(config)
    default = settings_from({}, tmp_path)
    assert build_notifier(default) is None
    assert announce_policy(default) == AnnouncePolicy()
    assert AnnouncePolicy().statuses == ALL_STATUSES and not AnnouncePolicy().comments


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("POSTFLOW_DISCORD_STATUSES", "DONE"),
        ("POSTFLOW_DISCORD_COMMENTS", "maybe"),
        ("POSTFLOW_DISCORD_WEBHOOK_URL", "ftp://discord.com/s3cr3t"),
    ],
)
def test_bad_settings_name_the_key_and_never_echo_the_url(
    key: str, value: str, tmp_path: Path
) -> None:
    """A malformed setting fails at start-up naming its key, without the secret value."""
    with pytest.raises(SettingsError) as caught:
        settings_from({key: value}, tmp_path)
    assert key in str(caught.value)
    assert "s3cr3t" not in str(caught.value)


def test_skip_reason_follows_destination_statuses_and_comment_settings() -> None:
    """No destination skips everything; unlisted statuses and (by default) comments are skipped."""
    assert AnnouncePolicy().skip_reason(status_note()) == "no notification destination configured"
    policy = AnnouncePolicy(enabled=True, statuses=frozenset({PostflowStatus.FAILED}))
    assert policy.skip_reason(status_note()) == "status COMPLETED is not announced"
    assert not policy.wants(status_note())
    assert policy.skip_reason(status_note(new_status=PostflowStatus.FAILED)) is None
    assert policy.wants(status_note(new_status=PostflowStatus.FAILED))
    assert policy.skip_reason(comment_note()) == "comment notifications are off"
    assert AnnouncePolicy(enabled=True, comments=True).skip_reason(comment_note()) is None
    assert AnnouncePolicy(enabled=True).skip_reason(status_note(new_status=None)) == (
        "no status to announce"
    )


def test_a_disabled_policy_announces_not_even_comments() -> None:
    """Without a destination, comments are skipped even when comment notifications are on."""
    policy = AnnouncePolicy(enabled=False, comments=True)
    assert policy.skip_reason(comment_note()) == "no notification destination configured"


def test_redacted_form_and_key_never_contain_the_token() -> None:
    """The shown form keeps the last digits of the webhook id; the key is a stable hash."""
    assert redact(SECRET_URL) == "discord webhook …/5678"
    assert destination_key(SECRET_URL) == destination_key(SECRET_URL)
    assert "s3cr3t" not in destination_key(SECRET_URL)
    assert destination_key(SECRET_URL) != destination_key(SECRET_URL + "x")


class Ticks:
    """A monotonic clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        """The current tick."""
        return self.now


def test_rate_limit_waits_only_when_the_bucket_is_empty() -> None:
    """Requests go at once while some remain; with none left, the wait is the reset time."""
    ticks = Ticks()
    state = RateLimitState(monotonic=ticks, wall=lambda: 1_000.0, margin=0.0)
    assert state.delay() == 0.0
    state.observe(
        {"x-ratelimit-remaining": "1", "x-ratelimit-reset-after": "1.5", "x-ratelimit-bucket": "b"}
    )
    assert state.delay() == 0.0
    state.observe(
        {"x-ratelimit-remaining": "0", "x-ratelimit-reset-after": "1.5", "x-ratelimit-bucket": "b"}
    )
    assert state.delay() == pytest.approx(1.5)
    ticks.now += 1.0
    assert state.delay() == pytest.approx(0.5)
    ticks.now += 1.0
    assert state.delay() == 0.0


def test_rate_limit_uses_the_epoch_reset_when_reset_after_is_missing() -> None:
    """``X-RateLimit-Reset`` (epoch seconds) is used against the wall clock as a fallback."""
    state = RateLimitState(monotonic=Ticks(), wall=lambda: 1_000.0, margin=0.0)
    state.observe({"x-ratelimit-remaining": "0", "x-ratelimit-reset": "1002.25"})
    assert state.delay() == pytest.approx(2.25)


def test_a_new_bucket_forgets_the_old_counts_and_429_blocks() -> None:
    """A changed bucket id resets the state; a 429 blocks for its retry_after."""
    ticks = Ticks()
    state = RateLimitState(monotonic=ticks, margin=0.0)
    state.observe(
        {"x-ratelimit-remaining": "0", "x-ratelimit-reset-after": "9", "x-ratelimit-bucket": "a"}
    )
    state.observe({"x-ratelimit-bucket": "b"})
    assert state.delay() == 0.0
    state.block(3.0)
    assert state.delay() == pytest.approx(3.0)
    assert state.snapshot().rate_limited == 1


def test_retry_after_prefers_json_then_header_then_default() -> None:
    """A 429's wait comes from the JSON body, else Retry-After, else the bucket reset, else a default."""
    assert retry_after_from({"retry-after": "4"}, {"retry_after": 0.75}, 5.0) == 0.75
    assert retry_after_from({"retry-after": "4"}, None, 5.0) == 4.0
    assert retry_after_from({"x-ratelimit-reset-after": "1.2"}, None, 5.0) == 1.2
    assert retry_after_from({}, "<html>", 5.0) == 5.0
