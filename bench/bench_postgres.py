"""PostgreSQL beside SQLite: ingest with one and two receivers, and how fast a role moves.

Same run, same uvicorn settings, same signed unique deliveries as
``bench_receiver``. Three set-ups are measured one after the other:

- one receiver on SQLite (the baseline, as ``bench_receiver`` runs it);
- one receiver on a fresh PostgreSQL database;
- two receivers on one PostgreSQL database, each loaded by its own process
  with half the deliveries at the same time.

For each: throughput of 202s, p50/p99 latency, and CPU per applied delivery
of the receivers' process trees (the window runs until the backlog is 0); for
PostgreSQL also the server's own CPU per delivery (its whole process tree).
Then the dispatcher role: two receivers, ``kill -9`` of the holder, and the
seconds until the other one's ``/health`` says it holds the role (5 times).
The database server is ``BENCH_POSTGRES`` (default the local one).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import tempfile
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import attrs
import psycopg

from bench import proc
from bench.load import LoadResult, run_load, signed_deliveries
from bench.servers import (
    HOST,
    RECEIVER_FACTORY,
    Server,
    ServerError,
    free_port,
    receiver_env,
    uvicorn_command,
)

SERVER_URL = os.environ.get("BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
SECRET = "bench-secret"
CONCURRENCY = 32
WARMUP = 1_000
MEASURED = int(os.environ.get("BENCH_PG_REQUESTS", "10000"))
DRAIN_TIMEOUT = 120.0
ROLE_MOVES = 5
# A Discord URL nobody answers: the dispatcher role exists, its sends fail and wait.
NO_DISCORD = "http://127.0.0.1:9/api/webhooks/1/bench"


@attrs.frozen
class Ingest:
    """One set-up's figures."""

    name: str
    accepted: int
    elapsed: float
    p50_ms: float
    p99_ms: float
    receiver_cpu: float
    database_cpu: float | None
    applied: int

    @property
    def rate(self) -> float:
        """202s per second over the measured load."""
        return self.accepted / self.elapsed if self.elapsed else 0.0

    def per_delivery_us(self, cpu: float | None) -> str:
        """CPU microseconds per applied delivery, as text."""
        if cpu is None or not self.applied:
            return "-"
        return f"{1e6 * cpu / self.applied:,.0f} µs"


def create_database() -> str:
    """A fresh database for one set-up; its URL."""
    name = f"pfw_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(SERVER_URL, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return f"{SERVER_URL.rsplit('/', 1)[0]}/{name}"


def drop_database(url: str) -> None:
    """Drop a database made by ``create_database``."""
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(SERVER_URL, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def postmaster_pid() -> int:
    """The PostgreSQL server's root process (the parent of our backend)."""
    with psycopg.connect(SERVER_URL) as conn:
        backend = conn.execute("SELECT pg_backend_pid()").fetchone()
    stat = proc.read_stat(int(backend[0])) if backend else None
    if stat is None:
        raise ServerError("the PostgreSQL server is not on this machine: no CPU figure")
    return stat.ppid


def receivers(count: int, tmp: Path, url: str | None, **extra: str) -> list[Server]:
    """``count`` receiver processes on SQLite (``url`` None) or on the PostgreSQL ``url``."""
    servers = []
    for index in range(count):
        port = free_port()
        env = receiver_env(SECRET, tmp / f"receiver-{index}")
        if url is not None:
            env |= {"POSTFLOW_STORE": "postgres", "POSTFLOW_DATABASE_URL": url}
        env |= extra
        command = uvicorn_command(RECEIVER_FACTORY, port, factory=True)
        servers.append(Server(f"receiver {index}", command, env, port))
    return servers


def load_all(
    pool: ProcessPoolExecutor, servers: list[Server], count: int, start: int
) -> list[LoadResult]:
    """``count`` deliveries split evenly over ``servers``, each loaded by its own process."""
    share = count // len(servers)
    futures = [
        pool.submit(
            run_load,
            HOST,
            server.port,
            signed_deliveries(HOST, server.port, SECRET, start + i * share, share),
            CONCURRENCY // len(servers),
        )
        for i, server in enumerate(servers)
    ]
    return [future.result() for future in futures]


def measure(
    pool: ProcessPoolExecutor, name: str, servers: list[Server], pg_root: int | None
) -> Ingest:
    """Warm up, then the measured load; CPU until the shared backlog is 0."""
    for server in servers:
        server.start()
    try:
        load_all(pool, servers, WARMUP, 0)
        servers[0].wait_drained(DRAIN_TIMEOUT)
        time.sleep(1.0)
        meters = [proc.CpuMeter(s.pid) for s in servers]
        db_meter = proc.CpuMeter(pg_root) if pg_root else None
        for meter in [*meters, *([db_meter] if db_meter else [])]:
            meter.start()
        results = load_all(pool, servers, MEASURED, WARMUP)
        drained = servers[0].wait_drained(DRAIN_TIMEOUT)
        for meter in [*meters, *([db_meter] if db_meter else [])]:
            meter.stop()
        accepted = sum(r.accepted for r in results)
        left = 0 if drained is not None else (servers[0].backlog() or 0)
    finally:
        for server in servers:
            server.stop()
    latencies = sorted(x for r in results for x in r.latencies)
    merged = LoadResult(
        min(r.started_at for r in results),
        max(r.ended_at for r in results),
        latencies,
        {},
        [],
    )
    return Ingest(
        name,
        accepted,
        merged.elapsed,
        merged.percentile(0.5),
        merged.percentile(0.99),
        sum(m.cpu for m in meters),
        db_meter.cpu if db_meter else None,
        accepted - left,
    )


def role_moves(tmp: Path, url: str) -> list[float]:
    """Seconds from ``kill -9`` of the dispatcher holder until another receiver holds the role."""
    moves = []
    servers = receivers(2, tmp, url, POSTFLOW_DISCORD_WEBHOOK_URL=NO_DISCORD)
    for server in servers:
        server.start()
    try:
        for _ in range(ROLE_MOVES):
            holder = next(
                s
                for s in servers
                if (s.health() or {}).get("roles", {}).get("dispatcher") == "held"
            )
            other = next(s for s in servers if s is not holder)
            killed = time.monotonic()
            holder.kill()
            while (other.health() or {}).get("roles", {}).get("dispatcher") != "held":
                if time.monotonic() - killed > 60:
                    raise ServerError("the dispatcher role did not move within 60 s")
                time.sleep(0.01)
            moves.append(time.monotonic() - killed)
            holder.start()
    finally:
        for server in servers:
            try:
                server.stop()
            except (ServerError, subprocess.SubprocessError):
                pass
    return moves


def report(rows: list[Ingest], moves: list[float], failure: str | None) -> None:
    """Print the figures side by side."""
    print("\n== ingest: SQLite vs PostgreSQL, one and two receivers, same run ==")
    print(
        f"load: {MEASURED:,} measured unique signed deliveries over {CONCURRENCY} keep-alive "
        f"connections in all (two receivers: {CONCURRENCY // 2} each, from two processes), "
        f"after {WARMUP:,} to warm up; CPU until the backlog is 0"
    )
    if failure:
        print(f"did not complete: {failure}")
    header = (
        "set-up",
        "202/s",
        "p50",
        "p99",
        "receiver CPU/delivery",
        "PostgreSQL CPU/delivery",
        "applied",
    )
    lines = [header] + [
        (
            r.name,
            f"{r.rate:,.0f}",
            f"{r.p50_ms:.2f} ms",
            f"{r.p99_ms:.2f} ms",
            r.per_delivery_us(r.receiver_cpu),
            r.per_delivery_us(r.database_cpu),
            f"{r.applied:,}/{r.accepted:,}",
        )
        for r in rows
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for line in lines:
        print(
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(line, widths, strict=True))
            )
        )
    if moves:
        print(
            f"\ndispatcher role moved after kill -9 of its holder ({len(moves)} times): "
            f"median {statistics.median(moves):.2f} s, max {max(moves):.2f} s (target <= 10 s: "
            f"{'PASS' if max(moves) <= 10 else 'MISS'})"
        )


def main() -> None:
    """Measure the three set-ups and the role move, and print them."""
    rows: list[Ingest] = []
    moves: list[float] = []
    failure = None
    with tempfile.TemporaryDirectory() as tmp, ProcessPoolExecutor(2) as pool:
        root = Path(tmp)
        try:
            rows.append(
                measure(pool, "SQLite, 1 receiver", receivers(1, root / "sqlite", None), None)
            )
            pg_root = postmaster_pid()
            for count in (1, 2):
                url = create_database()
                try:
                    servers = receivers(count, root / f"pg{count}", url)
                    rows.append(measure(pool, f"PostgreSQL, {count} receiver(s)", servers, pg_root))
                finally:
                    drop_database(url)
            url = create_database()
            try:
                moves = role_moves(root / "roles", url)
            finally:
                drop_database(url)
        except (ServerError, OSError, psycopg.Error) as exc:
            failure = f"{type(exc).__name__}: {exc}"
    report(rows, moves, failure)


if __name__ == "__main__":
    main()
