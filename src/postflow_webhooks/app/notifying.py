"""Wiring the notifications: one dispatcher per destination, the announce policy, names.

The composition root calls these with the settings; they choose nothing about
adapters beyond building one Discord notifier per distinct webhook URL.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from postflow_webhooks.adapters.discord import DiscordConfig, DiscordNotifier
from postflow_webhooks.adapters.frameio import FrameioAdapter
from postflow_webhooks.app.policies import Policies
from postflow_webhooks.app.runtime import Closer
from postflow_webhooks.app.settings import Settings
from postflow_webhooks.domain.announce import AnnouncePolicy
from postflow_webhooks.domain.ports import (
    Clock,
    DestinationStates,
    NameDirectory,
    NotificationOutbox,
    Notifier,
)
from postflow_webhooks.service.dispatcher import NotificationDispatcher
from postflow_webhooks.service.enrichment import BestEffortNames
from postflow_webhooks.service.routing import Dispatchers


class Outbox(NotificationOutbox, DestinationStates, Protocol):
    """The outbox a dispatcher reads and the destinations' saved state (one store holds both)."""


def build_notifier(settings: Settings, url: str | None = None) -> DiscordNotifier | None:
    """The Discord notifier for ``url`` (default: the default destination's), when there is one."""
    url = url or settings.discord_webhook_url
    if not url:
        return None
    return DiscordNotifier(
        DiscordConfig(
            webhook_url=url,
            username=settings.discord_username,
            avatar_url=settings.discord_avatar_url,
        )
    )


def build_dispatchers(
    settings: Settings,
    default: Notifier | None,
    outbox: Outbox,
    clock: Clock,
    policies: Policies,
    closers: list[Closer],
    *,
    reserved: Sequence[str] = (),
) -> Dispatchers | None:
    """One dispatcher per destination: the default one, and one per project route.

    Routes sharing a URL (with each other or the default) share its notifier,
    so Discord's rate limits for that webhook are counted once. ``reserved``
    destinations have a dispatcher elsewhere (the alerts channel): the default
    one leaves them alone.
    """
    notifiers: dict[str, Notifier] = {}
    if default is not None and settings.discord_webhook_url:
        notifiers[settings.discord_webhook_url] = default
    routes = settings.discord_routes
    parts: list[NotificationDispatcher] = []

    def dispatcher(notifier: Notifier, route: str | None, exclude: list[str]) -> None:
        parts.append(
            NotificationDispatcher(
                outbox,
                outbox,
                notifier,
                clock,
                outage_backoff=policies.notification_outage,
                route=route,
                exclude=exclude,
            )
        )

    if default is not None:
        dispatcher(default, None, [*(r.route().destination for r in routes), *reserved])
    for route in routes:
        notifier = notifiers.get(route.webhook_url)
        if notifier is None:
            discord = build_notifier(settings, route.webhook_url)
            assert discord is not None
            closers.append(discord.aclose)
            notifier = notifiers[route.webhook_url] = discord
        dispatcher(notifier, route.route().destination, [])
    return Dispatchers(parts) if parts else None


def name_directory(settings: Settings, frameio: FrameioAdapter | None) -> NameDirectory | None:
    """Project and user names for messages; strict (a lookup may defer) only when routing."""
    if frameio is None:
        return None
    return frameio.directory if settings.discord_routes else BestEffortNames(frameio.directory)


def announce_policy(settings: Settings, default: Notifier | None) -> AnnouncePolicy:
    """What is announced, where and to whom, for ``settings``."""
    return AnnouncePolicy(
        enabled=default is not None,
        statuses=frozenset(settings.discord_statuses),
        comments=settings.discord_comments,
        routes=tuple(route.route() for route in settings.discord_routes),
        mentions=settings.discord_mentions,
    )
