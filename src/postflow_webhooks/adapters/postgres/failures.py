"""Whether PostgreSQL takes commits: its errors sorted, and the last failure kept.

A failure of the database itself (the server unreachable or shutting down, its
disk full, a read-only standby, no connection slot left) is a
``StorageUnavailableError``: the receiver answers 503 and Frame.io retries, the
worker retries its pass, and ``/health`` reports ``store_cannot_commit`` until a
commit goes through again. A momentary conflict (deadlock, serialization
failure, a lock not available) fails the attempt the same way but is not
reported: the next try normally succeeds. Anything else (a value PostgreSQL
refuses) is a plain ``StorageError`` about that one item, so the batch is
written again one item at a time and only that item fails.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import psycopg
from psycopg_pool import PoolTimeout

from postflow_webhooks.domain.errors import StorageError, StorageUnavailableError
from postflow_webhooks.domain.journal import CommitFailure

log = logging.getLogger("postflow_webhooks.storage")

# SQLSTATE codes, then classes (their first two characters), that mean the database fails.
_CODES = {
    "53100": ("disk_full", "the database server's disk is full"),
    "53200": ("out_of_memory", "the database server ran out of memory"),
    "53300": ("unavailable", "the database server has no connection slot left"),
    "25006": ("read_only", "the database is read-only (a standby, or a read-only setting)"),
    "57P01": ("unavailable", "the database server is shutting down"),
    "57P02": ("unavailable", "the database server crashed and is restarting"),
    "57P03": ("unavailable", "the database server is starting or not accepting connections"),
}
_CLASSES = {
    "08": ("unavailable", "the connection to the database server failed"),
    "53": ("unavailable", "the database server is out of resources"),
    "57": ("unavailable", "the database server stopped the operation"),
    "58": ("io_error", "the database server had a system error (I/O)"),
    "XX": ("damaged", "the database server reported an internal error or damaged data"),
}
# Conflicts between concurrent transactions: retry, nothing is wrong with the store.
_TRANSIENT = ("40", "55P03")


def storage_failure(exc: BaseException) -> tuple[str, str] | None:
    """``(reason, explanation)`` when ``exc`` says the database fails; ``None`` otherwise."""
    if isinstance(exc, PoolTimeout):
        return ("unavailable", "no connection to the database server could be had in time")
    if not isinstance(exc, psycopg.Error):
        return None
    code = exc.sqlstate
    if code is None:  # no answer from the server at all: the connection is gone
        if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
            return ("unavailable", "the connection to the database server failed")
        return None
    return _CODES.get(code) or _CLASSES.get(code[:2])


def transient(exc: BaseException) -> bool:
    """True for a conflict between transactions (deadlock, serialization): just retry."""
    code = exc.sqlstate if isinstance(exc, psycopg.Error) else None
    return code is not None and (code[:2] == _TRANSIENT[0] or code == _TRANSIENT[1])


def first_line(exc: BaseException) -> str:
    """The first line of an error's message (PostgreSQL adds detail lines)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class CommitTracker:
    """The last storage failure of one database, cleared by the next commit that goes through."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.failure: CommitFailure | None = None

    def failed(self, failure: tuple[str, str], detail: str) -> None:
        """A commit failed because of the database."""
        reason, explanation = failure
        if self.failure is None:
            log.error("the database %s takes no commit (%s): %s", self.label, reason, detail)
        since = self.failure.since if self.failure is not None else datetime.now(UTC)
        self.failure = CommitFailure(reason, f"{explanation} ({detail})", since)

    def committed(self) -> None:
        """A commit went through: the database takes commits again."""
        if self.failure is None:
            return
        down = (datetime.now(UTC) - self.failure.since).total_seconds()
        log.info("the database %s takes commits again (after %.0f s)", self.label, down)
        self.failure = None

    def translate(self, exc: BaseException, *, writing: bool) -> BaseException:
        """The error to raise for ``exc``: unavailable, a conflict, one bad item, or ``exc``.

        A failure of the database while ``writing`` is remembered for ``/health``.
        """
        failure = storage_failure(exc)
        if failure is not None:
            if writing:
                self.failed(failure, f"PostgreSQL: {first_line(exc)}")
            return StorageUnavailableError(f"database {self.label}: {first_line(exc)}")
        if transient(exc):
            return StorageUnavailableError(
                f"database {self.label}: {first_line(exc)} (a conflict with another "
                "receiver's transaction; retried)"
            )
        if isinstance(exc, psycopg.Error):
            return StorageError(f"database {self.label}: {first_line(exc)}")
        return exc
