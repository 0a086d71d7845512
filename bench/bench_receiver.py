"""The receiver against a bare Starlette endpoint, measured in the same run.

Both run under the same uvicorn settings (``servers.UVICORN_FLAGS``: uvloop,
httptools, no access log) in a process of their own; the load comes from a
separate process over 32 keep-alive connections, unique signed deliveries
each time. Each server goes through the same steps:

1. start, wait for ``GET /health`` = 200, warm up with 2,000 deliveries (the
   receiver: until its backlog has drained), settle;
2. idle: no traffic for 20 s, the CPU of its process tree over that time;
3. measured: 20,000 deliveries; the CPU of its process tree from the start of
   the load until the load ended (bare) or the backlog drained (receiver);
4. the receiver only: more deliveries up to 100,000 in all, drained, then the
   RSS of its process tree, SIGTERM, and every 202 looked up in its database.

Printed, each beside its target with PASS or MISS: CPU per applied delivery
against bare CPU per request, idle CPU, RSS, the throughput and p99 ratios
(p50 too), the time the backlog takes to drain and the durability check.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import attrs

from bench import proc
from bench.load import LoadResult, run_load, signed_deliveries
from bench.servers import (
    HOST,
    RECEIVER_FACTORY,
    UVICORN_FLAGS,
    Server,
    ServerError,
    clean_env,
    free_port,
    receiver_env,
    uvicorn_command,
)

SECRET = "bench-secret"
CONCURRENCY = 32
WARMUP = 2_000
MEASURED = int(os.environ.get("BENCH_REQUESTS", "20000"))
TOTAL = int(os.environ.get("BENCH_TOTAL", "100000"))
CHUNK = 20_000
IDLE_SECONDS = float(os.environ.get("BENCH_IDLE_SECONDS", "20"))
SETTLE_SECONDS = 2.0
DRAIN_TIMEOUT = 120.0
DATABASE = "postflow.sqlite3"

# Targets.
MAX_CPU_RATIO = 2.0
MAX_IDLE_EXTRA_POINTS = 0.1
MAX_RSS_MB = 60.0
MIN_THROUGHPUT_RATIO = 0.5
MAX_P99_RATIO = 2.0
MAX_DRAIN_SECONDS = 1.0


@attrs.define
class Figures:
    """What one server did; the receiver-only fields stay empty for the bare endpoint."""

    name: str
    idle: proc.CpuMeter
    load: LoadResult
    window: proc.CpuMeter  # from the start of the measured load to its end or drain
    done: int  # requests answered (bare) or deliveries applied (receiver) in the window
    done_what: str  # which of the two
    rss: dict[int, int]  # bytes by pid, over the whole tree, at the end
    labels: dict[int, str]  # command lines by pid, at the end
    leftover: list[int]  # pids of its tree still alive after it stopped
    drained_after: float | None = None  # seconds after the measured load ended
    sent: int = 0
    accepted_ids: list[str] = attrs.Factory(list)
    accepted: int = 0  # 202s, with or without a delivery id in the body
    stored: int = 0
    processed: int = 0
    database_error: str | None = None

    @property
    def cpu_per_request_us(self) -> float:
        """CPU microseconds per request answered or delivery applied in the window."""
        return 1e6 * self.window.cpu / self.done if self.done else float("inf")

    @property
    def rss_mb(self) -> float:
        """RSS summed over the process tree, MB (1,000,000 bytes)."""
        return sum(self.rss.values()) / proc.MB


class Loader:
    """Sends signed deliveries to one server from the load process."""

    def __init__(self, pool: ProcessPoolExecutor, server: Server) -> None:
        self._pool = pool
        self._server = server
        self.sent = 0

    def requests(self, count: int) -> list[bytes]:
        """The next ``count`` unique deliveries, signed now."""
        built = signed_deliveries(HOST, self._server.port, SECRET, self.sent, count)
        self.sent += count
        return built

    def send(self, requests: list[bytes]) -> LoadResult:
        """Send ``requests`` from the load process; wait for every answer."""
        return self._pool.submit(run_load, HOST, self._server.port, requests, CONCURRENCY).result()


def measure_bare(pool: ProcessPoolExecutor) -> Figures:
    """Warm-up, idle and measured load against the bare Starlette endpoint."""
    port = free_port()
    command = uvicorn_command("bench.bare_app:app", port)
    with Server("bare Starlette", command, clean_env(), port) as server:
        loader = Loader(pool, server)
        loader.send(loader.requests(WARMUP))
        time.sleep(SETTLE_SECONDS)
        idle = proc.idle_cpu(server.pid, IDLE_SECONDS)
        window = proc.CpuMeter(server.pid)
        requests = loader.requests(MEASURED)
        window.start()
        result = loader.send(requests)
        window.stop()
        rss = proc.tree_rss(server.pid)
        labels = {pid: proc.command_line(pid) for pid in rss}
        leftover = server.stop()
    return Figures(
        server.name,
        idle,
        result,
        window,
        result.answered,
        "requests answered",
        rss,
        labels,
        leftover,
        sent=loader.sent,
    )


def measure_receiver(pool: ProcessPoolExecutor, data_dir: Path) -> Figures:
    """Warm-up, idle, measured load and the rest up to ``TOTAL`` against the receiver."""
    port = free_port()
    command = uvicorn_command(RECEIVER_FACTORY, port, factory=True)
    with Server("postflow-webhooks", command, receiver_env(SECRET, data_dir), port) as server:
        loader = Loader(pool, server)
        results = [loader.send(loader.requests(WARMUP))]
        if server.wait_drained(DRAIN_TIMEOUT) is None:
            print(f"warning: the warm-up backlog did not drain in {DRAIN_TIMEOUT:.0f} s")
        time.sleep(SETTLE_SECONDS)
        idle = proc.idle_cpu(server.pid, IDLE_SECONDS)

        window = proc.CpuMeter(server.pid)
        requests = loader.requests(MEASURED)
        window.start()
        result = loader.send(requests)
        drained_at = server.wait_drained(DRAIN_TIMEOUT)
        window.stop()
        left = 0 if drained_at is not None else server.backlog()
        applied = result.accepted - left if left is not None else 0
        results.append(result)

        while loader.sent < TOTAL:
            results.append(loader.send(loader.requests(min(CHUNK, TOTAL - loader.sent))))
        if server.wait_drained(DRAIN_TIMEOUT) is None:
            print(f"warning: the backlog did not drain in {DRAIN_TIMEOUT:.0f} s")
        rss = proc.tree_rss(server.pid)
        labels = {pid: proc.command_line(pid) for pid in rss}
        leftover = server.stop()
    figures = Figures(
        server.name,
        idle,
        result,
        window,
        applied,
        "deliveries applied",
        rss,
        labels,
        leftover,
        drained_after=drained_at - result.ended_at if drained_at is not None else None,
        sent=loader.sent,
        accepted_ids=[i for r in results for i in r.accepted_ids],
        accepted=sum(r.accepted for r in results),
    )
    check_durable(figures, data_dir / DATABASE)
    return figures


def check_durable(figures: Figures, database: Path) -> None:
    """Count the 202s whose delivery is in ``database``, and those processed."""
    try:
        db = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
        try:
            states = dict(db.execute("SELECT delivery_id, state FROM deliveries"))
        finally:
            db.close()
    except sqlite3.Error as exc:
        figures.database_error = f"{database.name}: {exc}"
        return
    found = [states[i] for i in figures.accepted_ids if i in states]
    figures.stored = len(found)
    figures.processed = found.count("processed")


@attrs.frozen
class Row:
    """One line of the results table; ``ok`` is ``None`` for a figure without a target."""

    figure: str
    bare: str
    ours: str = "did not run"
    result: str = ""
    target: str = ""
    ok: bool | None = False

    def cells(self) -> tuple[str, ...]:
        """The row's cells, its verdict (PASS, MISS or nothing) last."""
        mark = "" if self.ok is None else "PASS" if self.ok else "MISS"
        return (self.figure, self.bare, self.ours, self.result, self.target, mark)


def table(bare: Figures, ours: Figures | None) -> list[Row]:
    """Every figure of both servers beside its target."""
    bl = bare.load
    idle_label = f"idle CPU over {IDLE_SECONDS:.0f} s (% of one core)"
    targets = {
        "throughput": f">= {MIN_THROUGHPUT_RATIO:.2f}x",
        "p99": f"<= {MAX_P99_RATIO:.2f}x",
        "cpu": f"<= {MAX_CPU_RATIO:.2f}x",
        "idle": f"<= bare {MAX_IDLE_EXTRA_POINTS:+.2f} pt",
        "drain": f"<= {MAX_DRAIN_SECONDS:.0f} s",
        "rss": f"<= {MAX_RSS_MB:.0f} MB",
    }
    if ours is None:
        return [
            Row("throughput (requests/s)", f"{bl.rate:,.0f}", target=targets["throughput"]),
            Row("latency p50 (ms)", f"{bl.percentile(0.5):.2f}", ok=None),
            Row("latency p99 (ms)", f"{bl.percentile(0.99):.2f}", target=targets["p99"]),
            Row("CPU per request (µs)", f"{bare.cpu_per_request_us:.1f}", target=targets["cpu"]),
            Row(idle_label, f"{bare.idle.percent_of_core:.2f}", target=targets["idle"]),
            Row("backlog drained after the load (s)", "-", target=targets["drain"]),
            Row("RSS of the process tree (MB)", f"{bare.rss_mb:.1f}", target=targets["rss"]),
            Row("durable 202s", "-", target="all"),
        ]
    ol = ours.load
    throughput = ol.rate / bl.rate
    p50 = ol.percentile(0.5) / bl.percentile(0.5)
    p99 = ol.percentile(0.99) / bl.percentile(0.99)
    cpu = ours.cpu_per_request_us / bare.cpu_per_request_us
    idle = ours.idle.percent_of_core - bare.idle.percent_of_core
    drained = ours.drained_after
    durable_ok = (
        ours.database_error is None
        and ours.accepted == len(ours.accepted_ids) > 0
        and ours.stored == ours.processed == len(ours.accepted_ids)
    )
    return [
        Row(
            "throughput (requests/s)",
            f"{bl.rate:,.0f}",
            f"{ol.rate:,.0f}",
            f"{throughput:.3f}x",
            targets["throughput"],
            throughput >= MIN_THROUGHPUT_RATIO,
        ),
        Row(
            "latency p50 (ms)",
            f"{bl.percentile(0.5):.2f}",
            f"{ol.percentile(0.5):.2f}",
            f"{p50:.3f}x",
            ok=None,
        ),
        Row(
            "latency p99 (ms)",
            f"{bl.percentile(0.99):.2f}",
            f"{ol.percentile(0.99):.2f}",
            f"{p99:.3f}x",
            targets["p99"],
            p99 <= MAX_P99_RATIO,
        ),
        Row(
            "CPU per request / per applied delivery (µs)",
            f"{bare.cpu_per_request_us:.1f}",
            f"{ours.cpu_per_request_us:.1f}",
            f"{cpu:.3f}x",
            targets["cpu"],
            cpu <= MAX_CPU_RATIO,
        ),
        Row(
            idle_label,
            f"{bare.idle.percent_of_core:.2f}",
            f"{ours.idle.percent_of_core:.2f}",
            f"{idle:+.2f} pt",
            targets["idle"],
            idle <= MAX_IDLE_EXTRA_POINTS,
        ),
        Row(
            "backlog drained after the load (s)",
            "-",
            f"{drained:.3f}" if drained is not None else "not drained",
            "",
            targets["drain"],
            drained is not None and drained <= MAX_DRAIN_SECONDS,
        ),
        Row(
            "RSS of the process tree (MB)",
            f"{bare.rss_mb:.1f}",
            f"{ours.rss_mb:.1f}",
            "",
            targets["rss"],
            ours.rss_mb <= MAX_RSS_MB,
        ),
        Row(
            "durable 202s",
            "-",
            "error" if ours.database_error else f"{ours.stored:,}/{len(ours.accepted_ids):,}",
            "" if ours.database_error else f"{ours.processed:,} processed",
            "all",
            durable_ok,
        ),
    ]


def describe(figures: Figures) -> list[str]:
    """The load, CPU window and process tree behind one server's figures."""
    load, window = figures.load, figures.window
    codes = ", ".join(
        f"{code or 'connection error'}: {n:,}" for code, n in sorted(load.statuses.items())
    )
    lines = [
        f"{figures.name}:",
        f"  measured load   {load.answered:,} answered in {load.elapsed:.2f} s ({codes})",
        f"  CPU window      {window.cpu:.2f} s CPU over {window.wall:.2f} s, {figures.done:,} {figures.done_what}",
        f"  idle window     {figures.idle.cpu:.2f} s CPU over {figures.idle.wall:.1f} s",
    ]
    lines += [
        f"  process {pid:<7} {rss / proc.MB:6.1f} MB  {figures.labels[pid]}"
        for pid, rss in figures.rss.items()
    ]
    if figures.leftover:
        lines.append(f"  still running after SIGTERM: {figures.leftover}")
    if figures.accepted != len(figures.accepted_ids):
        lines.append(
            f"  202s without a delivery_id: {figures.accepted - len(figures.accepted_ids):,}"
        )
    if figures.database_error:
        lines.append(f"  database not readable: {figures.database_error}")
    elif figures.accepted_ids:
        lines.append(
            f"  durable 202s {figures.stored:,}/{len(figures.accepted_ids):,}, "
            f"{figures.processed:,} processed"
        )
    return lines


def report(bare: Figures, ours: Figures | None, failure: str | None) -> None:
    """Print the comparison table and what lies behind it."""
    print("\n== postflow-webhooks vs bare Starlette: same uvicorn settings, same run ==")
    print(f"uvicorn {' '.join(UVICORN_FLAGS)}")
    print(
        f"load: {MEASURED:,} measured unique signed deliveries over {CONCURRENCY} keep-alive "
        f"connections from a separate process, after {WARMUP:,} to warm up; "
        f"{ours.sent if ours else TOTAL:,} to the receiver in all"
    )
    print(
        "CPU: user+system of the server's whole process tree (/proc/<pid>/stat, reaped "
        f"children included, {proc.CLOCK_TICKS} ticks/s); MB = 1,000,000 bytes"
    )
    print(
        f"RSS at the end: bare after {bare.sent:,} requests; the receiver after "
        f"{ours.sent if ours else TOTAL:,} deliveries accepted and drained"
    )
    print(
        "CPU window: from the start of the measured load until it ended (bare) or until "
        "the backlog drained (receiver)"
    )
    if failure:
        print(f"the receiver did not run: {failure}")
    header = ("figure", "bare", "receiver", "ratio/diff", "target", "")
    rows = [header, *(row.cells() for row in table(bare, ours))]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    print()
    for row in rows:
        print(
            "  ".join(
                cell.ljust(width) if i == 0 else cell.rjust(width)
                for i, (cell, width) in enumerate(zip(row, widths, strict=True))
            ).rstrip()
        )
    print()
    for figures in (bare, ours):
        if figures is not None:
            print("\n".join(describe(figures)))


def main() -> None:
    """Measure both servers and print the comparison."""
    with tempfile.TemporaryDirectory() as tmp, ProcessPoolExecutor(1) as pool:
        bare = measure_bare(pool)
        ours, failure = None, None
        try:
            ours = measure_receiver(pool, Path(tmp))
        except (ServerError, OSError) as exc:
            failure = f"{type(exc).__name__}: {exc}"
    report(bare, ours, failure)


if __name__ == "__main__":
    main()
