"""What a process tree costs, read straight from ``/proc`` (Linux only, no psutil).

A server is measured as its whole tree: the process we started and every
descendant (a worker process, multiprocessing's resource tracker, ...), found
through the parent links in ``/proc/<pid>/stat``. Its CPU time is each live
member's ``utime + stime`` plus ``cutime + cstime`` (the CPU of children that
have already exited and been reaped, which the kernel adds to their parent),
so a helper process that comes and goes between two readings is still
counted. Take two readings and subtract: ``CpuMeter`` does that.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import attrs

PROC = Path("/proc")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
MB = 1_000_000  # bytes; figures are printed in MB, not MiB


@attrs.frozen
class ProcStat:
    """The fields of one ``/proc/<pid>/stat`` that the benchmarks use."""

    pid: int
    ppid: int
    state: str
    cpu_ticks: int  # utime + stime: this process, all its threads
    reaped_ticks: int  # cutime + cstime: its children already exited and waited for


def read_stat(pid: int) -> ProcStat | None:
    """``/proc/<pid>/stat`` parsed, or ``None`` if the process is gone."""
    try:
        raw = (PROC / str(pid) / "stat").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The name (field 2) is in parentheses and may hold spaces or ')'.
    fields = raw[raw.rindex(b")") + 2 :].split()
    # fields[0] is field 3 (state); field n is fields[n - 3].
    return ProcStat(
        pid=pid,
        ppid=int(fields[1]),
        state=fields[0].decode(),
        cpu_ticks=int(fields[11]) + int(fields[12]),
        reaped_ticks=int(fields[13]) + int(fields[14]),
    )


def all_stats() -> dict[int, ProcStat]:
    """Every process on the machine, by pid."""
    stats = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            stat = read_stat(int(entry.name))
            if stat is not None:
                stats[stat.pid] = stat
    return stats


def tree(root: int) -> list[ProcStat]:
    """``root`` and all its live descendants (empty if ``root`` is gone)."""
    stats = all_stats()
    if root not in stats:
        return []
    children: dict[int, list[int]] = {}
    for stat in stats.values():
        children.setdefault(stat.ppid, []).append(stat.pid)
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(stats[pid])
        todo += children.get(pid, [])
    return found


def cpu_seconds(root: int) -> float:
    """User + system CPU seconds spent so far by ``root``'s tree, reaped children included."""
    ticks = sum(stat.cpu_ticks + stat.reaped_ticks for stat in tree(root))
    return ticks / CLOCK_TICKS


def rss_bytes(pid: int) -> int:
    """Resident memory of one process (``VmRSS``), bytes; 0 if gone or a zombie."""
    try:
        status = (PROC / str(pid) / "status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return 0
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024  # the kernel's "kB" is KiB
    return 0


def tree_rss(root: int) -> dict[int, int]:
    """Resident memory of each process in ``root``'s tree, bytes, by pid."""
    return {stat.pid: rss_bytes(stat.pid) for stat in tree(root)}


def command_line(pid: int, width: int = 72) -> str:
    """A process's command line (program without its directory), cut to ``width``, for labels."""
    try:
        raw = (PROC / str(pid) / "cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return "(gone)"
    args = raw.decode(errors="replace").rstrip("\0").split("\0")
    text = " ".join(" ".join([Path(args[0]).name, *args[1:]]).split())
    return text if len(text) <= width else text[: width - 3] + "..."


def alive(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie."""
    stat = read_stat(pid)
    return stat is not None and stat.state != "Z"


@attrs.define
class CpuMeter:
    """CPU seconds and wall seconds of a process tree between ``start()`` and ``stop()``."""

    root: int
    cpu: float = attrs.field(default=0.0, init=False)
    wall: float = attrs.field(default=0.0, init=False)
    _cpu0: float = attrs.field(default=0.0, init=False)
    _wall0: float = attrs.field(default=0.0, init=False)

    def start(self) -> None:
        """Take the first reading."""
        self._wall0 = time.monotonic()
        self._cpu0 = cpu_seconds(self.root)

    def stop(self) -> None:
        """Take the second reading; ``cpu`` and ``wall`` hold the differences."""
        self.cpu = cpu_seconds(self.root) - self._cpu0
        self.wall = time.monotonic() - self._wall0

    @property
    def percent_of_core(self) -> float:
        """CPU over the window as a percentage of one core."""
        return 100 * self.cpu / self.wall if self.wall else 0.0


def idle_cpu(root: int, seconds: float) -> CpuMeter:
    """Sleep ``seconds`` and return what ``root``'s tree spent meanwhile."""
    meter = CpuMeter(root)
    meter.start()
    time.sleep(seconds)
    meter.stop()
    return meter
