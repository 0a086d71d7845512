"""The signing secrets in force: the configured one, and one ``register`` stored on disk."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Protocol

log = logging.getLogger("postflow_webhooks")

RECHECK_SECONDS = 1.0


class StoredSecret(Protocol):
    """A secret kept in a file (Frame.io's, saved by ``register``)."""

    @property
    def path(self) -> Path:
        """Where it is kept."""
        ...

    def load(self) -> str | None:
        """The secret, or ``None``."""
        ...


class SigningSecrets:
    """Which secrets may sign a delivery now; a newly stored one is picked up within a second."""

    def __init__(
        self,
        configured: str | None,
        stored: StoredSecret | None = None,
        *,
        locked: bool = False,
    ) -> None:
        self._secrets = [configured] if configured else []
        self._stored = stored
        self._locked = locked
        self._stamp: int | None = None
        self._checked_at = float("-inf")
        if stored is not None:
            self._reload()

    def current(self) -> list[str]:
        """The secrets in force (the file's change time is checked at most once a second)."""
        if self._stored is not None:
            now = time.monotonic()
            if now - self._checked_at >= RECHECK_SECONDS:
                self._checked_at = now
                self._reload()
        return self._secrets

    def required(self) -> bool:
        """True when deliveries must be signed.

        A receiver made public before it has a secret (it will register its
        webhook and get one) is ``locked``: it refuses every delivery until then.
        """
        return self._locked or bool(self.current())

    @property
    def locked(self) -> bool:
        """True while deliveries are refused for want of any secret."""
        return self._locked and not self.current()

    def add(self, secret: str) -> None:
        """Accept deliveries signed with a new secret (a webhook was just created)."""
        if secret not in self._secrets:
            self._secrets.insert(0, secret)
            log.info("a new webhook signing secret is in force")

    def _reload(self) -> None:
        assert self._stored is not None
        try:
            stamp: int | None = self._stored.path.stat().st_mtime_ns
        except OSError:
            stamp = None
        if stamp == self._stamp:
            return
        self._stamp = stamp
        found = self._stored.load() if stamp is not None else None
        if found:
            self.add(found)
