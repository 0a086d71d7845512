"""Valid deliveries' latency while 1,000 slow or idle connections hang on the receiver.

The receiver runs as users run it, ``postflow-webhooks serve`` (so its
connection limits are in force, at their defaults). Signed deliveries go over
``CONCURRENCY`` keep-alive connections from a separate process, once with
nothing else connected and once while a third process holds
``BENCH_SLOW_CONNECTIONS`` hostile connections: half idle (connected, silent),
half slow (an unfinished request head, one more byte a second). Each is
reopened as soon as the receiver closes it, so the receiver carries the full
number throughout, and the load starts only after ``BENCH_SLOW_WARMUP`` seconds,
once the head timeouts have started closing and the attacker reopening. The
p99 of the second run is printed beside the first's and the target (at most
2x); nothing is asserted.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import resource
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

from bench.load import LoadResult, run_load, signed_deliveries
from bench.servers import HOST, Server, free_port, receiver_env

SECRET = "bench-slow-secret"
REQUESTS = int(os.environ.get("BENCH_SLOW_REQUESTS", "4000"))
HOSTILE = int(os.environ.get("BENCH_SLOW_CONNECTIONS", "1000"))
WARMUP = float(os.environ.get("BENCH_SLOW_WARMUP", "12"))
CONCURRENCY = 2
TARGET = 2.0
COMMAND = str(Path(sys.executable).with_name("postflow-webhooks"))


def _raise_open_files(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        top = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (top, hard))


async def _hold(port: int, slow: bool, stop: Event, counts: Counter[str]) -> None:
    """One hostile connection, reopened whenever the receiver closes it."""
    while not stop.is_set():
        try:
            reader, writer = await asyncio.open_connection(HOST, port)
        except OSError:
            counts["connect errors"] += 1
            await asyncio.sleep(0.5)
            continue
        counts["opened"] += 1
        try:
            if slow:
                writer.write(b"POST /frameio-webhook HTTP/1.1\r\nHost: bench\r\nX-Slow: ")
            while not stop.is_set():
                if slow:
                    writer.write(b"a")
                try:
                    data = await asyncio.wait_for(reader.read(4096), timeout=1.0)
                except TimeoutError:
                    continue
                if not data:
                    counts["closed by the receiver"] += 1
                    break
                counts["answered " + data[9:12].decode("latin-1")] += 1
        except OSError:
            counts["closed by the receiver"] += 1
        finally:
            writer.close()


async def _attack(port: int, connections: int, stop: Event) -> dict[str, int]:
    counts: Counter[str] = Counter()
    holders = [
        asyncio.create_task(_hold(port, index % 2 == 1, stop, counts))
        for index in range(connections)
    ]
    while not stop.is_set():
        await asyncio.sleep(0.2)
    await asyncio.gather(*holders, return_exceptions=True)
    return dict(counts)


def attack(port: int, connections: int, stop: Event, results: Any) -> None:
    """Hold ``connections`` hostile connections until ``stop`` is set; put the counts."""
    _raise_open_files(connections + 100)
    results.put(asyncio.run(_attack(port, connections, stop)))


def measure(pool: ProcessPoolExecutor, server: Server, start: int) -> LoadResult:
    """Send ``REQUESTS`` signed deliveries numbered from ``start``; the load's figures."""
    requests = signed_deliveries(HOST, server.port, SECRET, start, REQUESTS)
    return pool.submit(run_load, HOST, server.port, requests, CONCURRENCY).result()


def report(quiet: LoadResult, loaded: LoadResult, hostile: dict[str, int]) -> None:
    """Print both runs beside the target."""
    print(f"\n== valid deliveries under {HOSTILE:,} slow or idle connections ==")
    print("receiver: postflow-webhooks serve, default connection limits")
    print(
        f"load: {REQUESTS:,} signed deliveries over {CONCURRENCY} keep-alive connections "
        "from a separate process, in each run"
    )
    print(
        f"hostile: {HOSTILE // 2:,} idle + {HOSTILE - HOSTILE // 2:,} slow connections from a "
        f"third process, reopened when closed, for {WARMUP:g} s before and during the load"
    )
    ratio = loaded.percentile(0.99) / quiet.percentile(0.99) if quiet.latencies else 0.0
    verdict = "PASS" if ratio <= TARGET else "MISS"
    rows = [
        ("figure", "unloaded", f"under {HOSTILE:,}", "ratio", "target", ""),
        (
            "p50 latency",
            f"{quiet.percentile(0.5):.2f} ms",
            f"{loaded.percentile(0.5):.2f} ms",
            f"{loaded.percentile(0.5) / max(quiet.percentile(0.5), 1e-9):.2f}x",
            "",
            "",
        ),
        (
            "p99 latency",
            f"{quiet.percentile(0.99):.2f} ms",
            f"{loaded.percentile(0.99):.2f} ms",
            f"{ratio:.2f}x",
            f"at most {TARGET:g}x",
            verdict,
        ),
        (
            "202 answers",
            f"{quiet.accepted:,}/{REQUESTS:,}",
            f"{loaded.accepted:,}/{REQUESTS:,}",
            "",
            "all",
            "PASS" if quiet.accepted == loaded.accepted == REQUESTS else "MISS",
        ),
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    print()
    for row in rows:
        cells = [
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        print("  ".join(cells).rstrip())
    counted = ", ".join(f"{what} {n:,}" for what, n in sorted(hostile.items()))
    print(f"\nhostile connections: {counted or 'none'}")


def main() -> None:
    """Run both measurements against one receiver and print them."""
    with tempfile.TemporaryDirectory() as tmp, ProcessPoolExecutor(1) as pool:
        port = free_port()
        env = receiver_env(SECRET, Path(tmp))
        with Server("receiver", [COMMAND, "serve", "--port", str(port)], env, port) as server:
            measure(pool, server, 0)  # warm-up
            quiet = measure(pool, server, REQUESTS)
            context = multiprocessing.get_context("spawn")
            stop, results = context.Event(), context.Queue()
            attacker = context.Process(target=attack, args=(port, HOSTILE, stop, results))
            attacker.start()
            time.sleep(WARMUP)
            loaded = measure(pool, server, 2 * REQUESTS)
            stop.set()
            hostile = results.get(timeout=60)
            attacker.join(timeout=30)
    report(quiet, loaded, hostile)


if __name__ == "__main__":
    main()
