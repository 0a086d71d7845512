"""The data directory: made ready before anything is opened, and held by one receiver.

The lock is an exclusive ``flock`` on ``<data dir>/postflow.lock``, held for
the receiver's whole life. The kernel releases it when the process ends,
however it ends (``kill -9`` included), so a restart right after a crash
always finds it free; a second receiver on the same directory is refused at
once, before it binds its port.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import IO

LOCK_NAME = "postflow.lock"


class DataDirectoryError(Exception):
    """The data directory cannot be used; the message says why and what to do.

    ``problem`` is the why; the message adds the fix for the command line, and
    the PostFlow facade words its own fix (``data_dir=``).
    """

    def __init__(self, problem: str, data_dir: Path, *, in_use: bool = False) -> None:
        self.problem = problem
        self.data_dir = data_dir
        self.in_use = in_use
        fix = (
            "Stop it, or give this one its own --data-dir (POSTFLOW_DATA_DIR)."
            if in_use
            else "Fix it, or choose another with --data-dir or POSTFLOW_DATA_DIR."
        )
        super().__init__(f"{problem}. {fix}")


def prepare(data_dir: Path) -> None:
    """Create the data directory if needed and prove it writable, or say how to fix it."""
    if data_dir.exists() and not data_dir.is_dir():
        raise DataDirectoryError(
            f"the data directory {data_dir} is a file, not a directory", data_dir
        )
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        probe = data_dir / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise DataDirectoryError(
            f"the data directory {data_dir} is not usable ({exc.strerror})", data_dir
        ) from None


class DataDirectoryLock:
    """Exclusive use of a data directory by this process, released by the kernel at exit."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.path = data_dir / LOCK_NAME
        self._handle: IO[str] | None = None

    @property
    def held(self) -> bool:
        """True while this process holds the lock."""
        return self._handle is not None

    def acquire(self) -> None:
        """Take the lock now, or raise ``DataDirectoryError`` naming the holder and the fix."""
        if self._handle is not None:
            return
        prepare(self.data_dir)
        handle = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 - held for our whole life
        if not _try_lock(handle):
            handle.seek(0)
            holder = handle.read().strip()
            handle.close()
            # At the same instant, the holder may not have written its pid yet.
            who = f"another receiver (pid {holder})" if holder.isdigit() else "another receiver"
            raise DataDirectoryError(
                f"{who} is using the data directory {self.data_dir}",
                self.data_dir,
                in_use=True,
            )
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._handle = handle

    def release(self) -> None:
        """Let the directory go (the kernel would at exit anyway)."""
        handle, self._handle = self._handle, None
        if handle is not None:
            with contextlib.suppress(OSError):
                _unlock(handle)
            handle.close()


def _try_lock(handle: IO[str]) -> bool:
    try:
        import fcntl
    except ImportError:  # Windows: a byte-range lock does the same job
        import msvcrt

        try:
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]
        except OSError:
            return False
        return True
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _unlock(handle: IO[str]) -> None:
    try:
        import fcntl
    except ImportError:
        import msvcrt

        handle.seek(0)
        msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)  # type: ignore[attr-defined]
        return
    fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
