"""The tunnel log: cloudflared's lines verbatim plus our lifecycle lines, rotated by size."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

LIFECYCLE_TAG = "[postflow]"


def utc_stamp(now: datetime | None = None) -> str:
    """An RFC 3339 UTC timestamp in cloudflared's own shape (``2026-05-16T15:40:10Z``)."""
    return (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")


class TunnelLog:
    """An append-only file that rotates to ``.1`` ... ``.N`` once it exceeds ``max_bytes``."""

    def __init__(self, path: Path, *, max_bytes: int = 5_000_000, backups: int = 3) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.backups = backups
        self._file: BinaryIO | None = None
        self._size = 0

    def _open(self) -> BinaryIO:
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "ab")  # noqa: SIM115 - kept open across writes
            self._size = self._file.tell()
        return self._file

    def _rotate(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        if self.backups < 1:
            self.path.unlink(missing_ok=True)
            return
        for index in range(self.backups - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{index}")
            if older.exists():
                os.replace(older, self.path.with_name(f"{self.path.name}.{index + 1}"))
        if self.path.exists():
            os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))

    def write_line(self, line: str) -> None:
        """Append one line as given (a cloudflared line is kept verbatim)."""
        data = line.rstrip("\r\n").encode("utf-8", "replace") + b"\n"
        handle = self._open()
        if self._size and self._size + len(data) > self.max_bytes:
            self._rotate()
            handle = self._open()
        handle.write(data)
        self._size += len(data)

    def lifecycle(self, message: str) -> None:
        """Append one of our own lines, timestamped and tagged so it stands out."""
        self.write_line(f"{utc_stamp()} INF {LIFECYCLE_TAG} {message}")
        self.flush()

    def flush(self) -> None:
        """Push buffered lines to the file."""
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        """Flush and close the file."""
        if self._file is not None:
            self._file.close()
            self._file = None
