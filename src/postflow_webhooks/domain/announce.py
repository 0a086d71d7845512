"""Which due notifications are announced, where, and whom they call.

The studio's choice of statuses and comments decides *whether*; its routes
decide *where*: a notification about a file in a routed project goes to that
route's destination, any other to the default one (when there is one). Per
status, a route (or all of them) may call a role or a user. All of it is
decided once, when the change is committed: what is not wanted is counted and
never queued.
"""

from __future__ import annotations

import attrs

from postflow_webhooks.domain.records import (
    DEFAULT_DESTINATION,
    Mention,
    Notification,
    NotificationKind,
)
from postflow_webhooks.domain.statuses import PostflowStatus

ALL_STATUSES: frozenset[PostflowStatus] = frozenset(PostflowStatus)

Mentions = tuple[tuple[PostflowStatus, tuple[Mention, ...]], ...]


def route_key(project: str) -> str:
    """The destination name of the route for ``project`` (a project's name or id)."""
    return f"project:{project.strip()}"


@attrs.frozen
class Route:
    """Notifications about files of one project (by name or id) go to their own destination."""

    project: str
    mentions: Mentions = ()

    @property
    def destination(self) -> str:
        """The destination this route's notifications carry."""
        return route_key(self.project)

    def matches(self, project_id: str | None, project_name: str | None) -> bool:
        """True for the project with this id, or this name (case and outer spaces ignored)."""
        wanted = self.project.strip()
        if project_id is not None and project_id == wanted:
            return True
        return project_name is not None and project_name.strip().casefold() == wanted.casefold()


def mentions_for(mentions: Mentions, status: PostflowStatus | None) -> tuple[Mention, ...] | None:
    """Who is called for ``status``; ``None`` when nobody is configured for it."""
    for configured, called in mentions:
        if configured is status:
            return called
    return None


@attrs.frozen
class AnnouncePolicy:
    """What is worth a message, where it goes and whom it calls.

    ``enabled`` says whether the default destination exists; ``routes`` are
    tried in order and the first that matches the file's project wins.
    ``mentions`` apply to every route that does not name its own for a status.
    """

    enabled: bool = False
    statuses: frozenset[PostflowStatus] = ALL_STATUSES
    comments: bool = False
    routes: tuple[Route, ...] = ()
    mentions: Mentions = ()

    def route(self, notification: Notification) -> Route | None:
        """The route whose project the notification's file is in, if any."""
        for route in self.routes:
            if route.matches(notification.project_id, notification.project_name):
                return route
        return None

    def skip_reason(self, notification: Notification) -> str | None:
        """Why ``notification`` is not announced; ``None`` when it is."""
        if not self.enabled and self.route(notification) is None:
            if not self.routes:
                return "no notification destination configured"
            return "no route for this project and no default destination"
        if notification.kind is NotificationKind.COMMENT:
            return None if self.comments else "comment notifications are off"
        status = notification.new_status
        if status is None:
            return "no status to announce"
        if status not in self.statuses:
            return f"status {status.name} is not announced"
        return None

    def wants(self, notification: Notification) -> bool:
        """True when ``notification`` is to be queued and sent."""
        return self.skip_reason(notification) is None

    def address(self, notification: Notification) -> Notification | None:
        """The notification with its destination and mentions, or ``None`` when not announced."""
        if not self.wants(notification):
            return None
        route = self.route(notification)
        called: tuple[Mention, ...] | None = None
        if notification.kind is NotificationKind.STATUS:
            if route is not None:
                called = mentions_for(route.mentions, notification.new_status)
            if called is None:
                called = mentions_for(self.mentions, notification.new_status)
        return attrs.evolve(
            notification,
            destination=route.destination if route is not None else DEFAULT_DESTINATION,
            mentions=called or (),
        )
