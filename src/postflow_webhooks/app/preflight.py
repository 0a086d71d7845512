"""Checks made before serving, so that start-up failures read as instructions."""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

from postflow_webhooks.adapters.sqlite.connection import open_database
from postflow_webhooks.adapters.sqlite.journal import DATABASE_NAME
from postflow_webhooks.app.settings import Settings
from postflow_webhooks.app.worker_host import LOCK_NAME
from postflow_webhooks.domain.errors import StorageError

# How long a worker lock held by another process may take to be released.
LOCK_PATIENCE_SECONDS = 5.0


class PreflightError(Exception):
    """The receiver cannot start; the message says why and what to do."""


def preflight(settings: Settings) -> None:
    """Fail early, with the fix, when the data directory or database is unusable."""
    data_dir = settings.data_dir
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PreflightError(
            f"cannot create the data directory {data_dir}: {exc.strerror}. "
            "Choose another with --data-dir or POSTFLOW_DATA_DIR."
        ) from None
    if not os.access(data_dir, os.W_OK):
        raise PreflightError(
            f"the data directory {data_dir} is not writable. Fix its permissions or choose "
            "another with --data-dir or POSTFLOW_DATA_DIR."
        )
    try:
        open_database(data_dir / DATABASE_NAME).close()
    except StorageError as exc:
        raise PreflightError(
            f"{exc}. If the file is damaged, move it aside and restart; nothing else is touched."
        ) from None
    if settings.worker_process:
        _wait_for_worker_lock(data_dir / LOCK_NAME)


def _wait_for_worker_lock(path: Path, patience: float = LOCK_PATIENCE_SECONDS) -> None:
    """Refuse a data directory whose worker lock another receiver holds.

    A worker that outlived a killed receiver releases it within moments, after
    its pass; a lock still held after ``patience`` seconds belongs to a
    receiver that is running.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + patience
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if time.monotonic() < deadline:
                    time.sleep(0.1)
                    continue
                raise PreflightError(
                    f"another receiver is using the data directory {path.parent} (it holds "
                    f"{path.name}). Stop it, or give this one its own --data-dir."
                ) from None
            fcntl.flock(fd, fcntl.LOCK_UN)
            return
    finally:
        os.close(fd)
