"""Words a delivery carried that decided nothing: warned about once each, then counted.

A review option the studio's mapping does not know, and a status word no
vocabulary knows (``"weird"``), are applied as "no change"; the first time
each is seen by this process, one warning names it and what to do; the
worker's commit counts every sighting in the store (``BatchResult.words``),
which is what ``/webhook-status`` lists. ``fields`` gives a delivery's log
line its named fields (``--log-format json``).
"""

from __future__ import annotations

import logging

from postflow_webhooks.domain.rules import Decision

log = logging.getLogger("postflow_webhooks.worker")


class WordsSeen:
    """The unknown review options and status words seen since start, with counts."""

    def __init__(self, review_field: str) -> None:
        self.review_field = review_field
        self.review_options: dict[str, int] = {}
        self.statuses: dict[str, int] = {}

    def note(self, decision: Decision, event_type: str) -> None:
        """Warn about (once) and count what ``decision`` could not map."""
        if decision.unmapped_option is not None:
            self._review_option(decision.unmapped_option, decision.file_id)
        if decision.unknown_status is not None:
            self._status(decision.unknown_status, event_type, decision.file_id)

    def _review_option(self, option: str, file_id: str | None) -> None:
        if option not in self.review_options:
            log.warning(
                "review field %r: option %r maps to no PostFlow status (file %s); it decides "
                "nothing. Add it to review_options (POSTFLOW_REVIEW_OPTIONS) to map it",
                self.review_field,
                option,
                file_id or "-",
                extra={"file_id": file_id, "review_option": option},
            )
        self.review_options[option] = self.review_options.get(option, 0) + 1

    def _status(self, word: str, event_type: str, file_id: str | None) -> None:
        if word not in self.statuses:
            log.warning(
                "unknown status %r in a %s delivery (file %s): it decides nothing and the file "
                "keeps its status. If it is a review decision of your studio, add it to "
                "review_options (POSTFLOW_REVIEW_OPTIONS)",
                word,
                event_type,
                file_id or "-",
                extra={"event_type": event_type, "file_id": file_id, "unknown_status": word},
            )
        self.statuses[word] = self.statuses.get(word, 0) + 1


def fields(
    delivery_id: str, event_type: str, file_id: str | None, outcome: str, **more: object
) -> dict[str, object]:
    """A delivery's log line as named fields (``--log-format json`` shows them as keys)."""
    return {
        "delivery_id": delivery_id,
        "event_type": event_type,
        "file_id": None if file_id in (None, "-") else file_id,
        "outcome": outcome,
        **more,
    }
