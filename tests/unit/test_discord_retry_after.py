"""A 429's wait is capped: an infinite or absurd ``retry_after`` cannot stop notifications."""

from __future__ import annotations

import json

import pytest

from postflow_webhooks.adapters.discord.ratelimit import MAX_RETRY_AFTER, retry_after_from


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        ({}, json.loads('{"retry_after": 1e999}')),
        ({}, {"retry_after": 10**30}),
        ({"retry-after": "1e300"}, None),
        ({"x-ratelimit-reset-after": "86400"}, "<html>"),
    ],
)
def test_an_absurd_retry_after_waits_at_most_the_cap(headers: dict[str, str], body: object) -> None:
    """1e999 (inf), 10**30 or a day in any field waits 600 s, not forever."""
    assert retry_after_from(headers, body, 5.0) == MAX_RETRY_AFTER == 600.0


def test_a_sensible_retry_after_is_kept() -> None:
    """Ordinary waits pass through unchanged."""
    assert retry_after_from({}, {"retry_after": 0.75}, 5.0) == 0.75
    assert retry_after_from({"retry-after": "599"}, None, 5.0) == 599.0
