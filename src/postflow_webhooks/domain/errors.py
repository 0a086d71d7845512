"""The domain's errors. They carry data; adapters decide how to show them."""

from __future__ import annotations

import attrs


@attrs.frozen
class Problem:
    """One thing wrong with a payload, at a JSON path such as ``$.resource.id``."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class DomainError(Exception):
    """Base class of every error the core raises."""


class NotJsonError(DomainError):
    """A delivery whose bytes are not a JSON document at all."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class PayloadError(DomainError):
    """A delivery whose structure the core cannot read; lists every problem."""

    def __init__(self, problems: tuple[Problem, ...]) -> None:
        super().__init__("; ".join(str(p) for p in problems))
        self.problems = problems


class NotifierError(DomainError):
    """A notification could not be delivered; subclasses say what to do next."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class RateLimitedError(NotifierError):
    """The destination asked us to wait ``retry_after`` seconds."""

    def __init__(self, reason: str, retry_after: float) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class TransientError(NotifierError):
    """A failure that may pass (5xx, network); retry with backoff."""


class DestinationBrokenError(NotifierError):
    """The destination is gone or refuses our credentials (404, 401); stop sending."""


class RejectedError(NotifierError):
    """The destination refused this one notification (400); dead-letter it."""


class DetailsUnavailableError(DomainError):
    """The file-details lookup failed for now; the delivery waits and is retried."""


class TunnelError(DomainError):
    """The tunnel could not start or keep running; the message names the fix."""


class StorageError(DomainError):
    """A store or journal could not read or write; the message names the file."""


class StorageUnavailableError(StorageError):
    """The storage itself takes no commit (disk full, read-only, I/O error, locked too long)."""
