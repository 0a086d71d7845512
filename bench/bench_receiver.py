"""Receiver throughput against a bare Starlette endpoint, measured in the same run.

Both run under the same uvicorn settings (uvloop, httptools, no access log) in
their own process; the load comes from another process over keep-alive
connections. Printed: requests/s, p50 and p99 for both and the ratios, the
time the backlog takes to drain after the load stops, the RSS after 100,000
deliveries, and a durability check (every 202 is in the database).
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import httpx

from bench.load import LoadResult, build_request, run_load
from postflow_webhooks.adapters.http.signature import sign

HOST = "127.0.0.1"
# Settings a benchmark run may vary from the environment; everything else is reset.
TUNABLES = ("POSTFLOW_GROUP_COMMIT_LINGER", "POSTFLOW_WORKER_BATCH")
SECRET = "bench-secret"
CONCURRENCY = 32
MEASURED = int(os.environ.get("BENCH_REQUESTS", "20000"))
TOTAL = int(os.environ.get("BENCH_TOTAL", "100000"))
UVICORN_FLAGS = [
    "--loop",
    "uvloop",
    "--http",
    "httptools",
    "--no-access-log",
    "--log-level",
    "warning",
]


def free_port() -> int:
    """A free loopback port."""
    import socket

    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def signed_requests(port: int, start: int, count: int) -> list[bytes]:
    """``count`` unique signed deliveries, numbered from ``start``."""
    stamp = str(int(time.time()))
    requests = []
    for index in range(start, start + count):
        body = json.dumps(
            {
                "type": "file.upload.completed",
                "resource": {"id": f"bench-file-{index}", "type": "file"},
                "account": {"id": "acc"},
                "workspace": {"id": "ws"},
                "project": {"id": "proj"},
                "user": {"id": "user"},
            }
        ).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Frameio-Request-Timestamp": stamp,
            "X-Frameio-Signature": sign(SECRET, stamp, body),
        }
        requests.append(build_request(HOST, port, "/frameio-webhook", body, headers))
    return requests


def start(command: list[str], env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    """Start a server process and wait until /health answers."""
    process = subprocess.Popen(command, env=env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://{HOST}:{port}/health", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"server did not start: {command}")


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM and wait."""
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=60)


def load(pool: ProcessPoolExecutor, port: int, requests: list[bytes]) -> LoadResult:
    """Run the load in the load process."""
    return pool.submit(run_load, HOST, port, requests, CONCURRENCY).result()


def rss_mib(pid: int) -> float:
    """Resident memory of a process, MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def worker_pid(port: int) -> int | None:
    """The worker process's id, when the worker runs in a process of its own."""
    worker = httpx.get(f"http://{HOST}:{port}/health", timeout=5).json()["worker"]
    return int(worker["pid"]) if worker.get("own_process") else None


def backlog(port: int) -> int:
    """The receiver's backlog."""
    return int(httpx.get(f"http://{HOST}:{port}/health", timeout=5).json()["backlog"])


def drain_time(port: int) -> float:
    """Seconds until the backlog is empty."""
    started = time.perf_counter()
    while backlog(port) > 0:
        time.sleep(0.01)
    return time.perf_counter() - started


def line(name: str, result: LoadResult) -> str:
    """One row of the results table."""
    codes = ", ".join(f"{k}: {v}" for k, v in sorted(result.statuses.items()))
    return (
        f"{name:<22} {result.rate:>10.0f} req/s   p50 {result.percentile(0.5):6.2f} ms   "
        f"p99 {result.percentile(0.99):6.2f} ms   ({codes})"
    )


def main() -> None:
    """Run both servers under the same load and print the comparison."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("POSTFLOW_") or k in TUNABLES}
    python = sys.executable
    with tempfile.TemporaryDirectory() as tmp, ProcessPoolExecutor(1) as pool:
        bare_port = free_port()
        bare = start(
            [
                python,
                "-m",
                "uvicorn",
                "bench.bare_app:app",
                "--port",
                str(bare_port),
                *UVICORN_FLAGS,
            ],
            env,
            bare_port,
        )
        try:
            load(pool, bare_port, signed_requests(bare_port, 0, 2000))
            bare_result = load(pool, bare_port, signed_requests(bare_port, 0, MEASURED))
        finally:
            stop(bare)

        port = free_port()
        ours_env = {
            **env,
            "POSTFLOW_WEBHOOK_SECRET": SECRET,
            "POSTFLOW_DATA_DIR": tmp,
            "POSTFLOW_CONFIG_DIR": str(Path(tmp) / "config"),
            "POSTFLOW_LOG_LEVEL": "WARNING",
        }
        command = [
            python,
            "-m",
            "uvicorn",
            "--factory",
            "postflow_webhooks.app.composition:create_app",
            "--port",
            str(port),
            *UVICORN_FLAGS,
        ]
        ours = start(command, ours_env, port)
        accepted: list[str] = []
        try:
            warm = load(pool, port, signed_requests(port, 0, 2000))
            accepted += warm.accepted_ids
            drain_time(port)
            result = load(pool, port, signed_requests(port, 2000, MEASURED))
            accepted += result.accepted_ids
            drained = drain_time(port)
            sent = 2000 + MEASURED
            while sent < TOTAL:
                chunk = min(20000, TOTAL - sent)
                accepted += load(pool, port, signed_requests(port, sent, chunk)).accepted_ids
                sent += chunk
            drain_time(port)
            rss = rss_mib(ours.pid)
            worker = worker_pid(port)
            worker_rss = rss_mib(worker) if worker else 0.0
        finally:
            stop(ours)
        db = sqlite3.connect(Path(tmp) / "postflow.sqlite3")
        stored = {row[0] for row in db.execute("SELECT delivery_id FROM deliveries")}
        processed = db.execute(
            "SELECT count(*) FROM deliveries WHERE state = 'processed'"
        ).fetchone()[0]
        db.close()

    throughput_ratio = result.rate / bare_result.rate
    p99_ratio = result.percentile(0.99) / bare_result.percentile(0.99)
    durable = sum(1 for delivery_id in accepted if delivery_id in stored)
    print("\n== Receiver vs bare Starlette (same uvicorn settings, same run) ==")
    print(f"load: {MEASURED} unique signed deliveries, {CONCURRENCY} keep-alive connections")
    print(line("bare Starlette (base)", bare_result))
    print(line("postflow-webhooks", result))
    print(f"throughput ratio      {throughput_ratio:.2f}  (target >= 0.60)")
    print(f"p99 ratio             {p99_ratio:.2f}  (target <= 2.00)")
    print(f"backlog drained in    {drained:.3f} s after the load stopped  (target <= 1 s)")
    print(
        f"RSS after {sent} deliveries: receiver {rss:.1f} MiB, worker process {worker_rss:.1f} MiB"
    )
    print(f"durable 202s          {durable}/{len(accepted)} in the database, {processed} processed")


if __name__ == "__main__":
    main()
