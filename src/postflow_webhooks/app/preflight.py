"""Checks made before serving, so that start-up failures read as instructions."""

from __future__ import annotations

import os

from postflow_webhooks.adapters.sqlite.connection import open_database
from postflow_webhooks.adapters.sqlite.journal import DATABASE_NAME
from postflow_webhooks.app.settings import Settings
from postflow_webhooks.domain.errors import StorageError


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
