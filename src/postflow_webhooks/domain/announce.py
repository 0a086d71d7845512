"""Which due notifications are announced: the studio's choice of statuses and comments."""

from __future__ import annotations

import attrs

from postflow_webhooks.domain.records import Notification, NotificationKind
from postflow_webhooks.domain.statuses import PostflowStatus

ALL_STATUSES: frozenset[PostflowStatus] = frozenset(PostflowStatus)


@attrs.frozen
class AnnouncePolicy:
    """What is worth a message. Decided once, when the change is made: what is not
    wanted is counted and never queued."""

    enabled: bool = False
    statuses: frozenset[PostflowStatus] = ALL_STATUSES
    comments: bool = False

    def skip_reason(self, notification: Notification) -> str | None:
        """Why ``notification`` is not announced; ``None`` when it is."""
        if not self.enabled:
            return "no notification destination configured"
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
