"""A lean HTTP/1.1 load generator: pre-built requests over keep-alive connections.

It runs in its own process (the machine has two cores: one for the server,
one for the load) and speaks just enough HTTP to time each request.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import attrs


@attrs.frozen
class LoadResult:
    """What one load run measured."""

    elapsed: float
    latencies: list[float]
    statuses: dict[int, int]
    accepted_ids: list[str]

    @property
    def rate(self) -> float:
        """Requests per second."""
        return len(self.latencies) / self.elapsed if self.elapsed else 0.0

    def percentile(self, fraction: float) -> float:
        """Latency at ``fraction`` (0.5 = p50), in milliseconds."""
        ordered = sorted(self.latencies)
        if not ordered:
            return 0.0
        index = min(len(ordered) - 1, int(fraction * len(ordered)))
        return ordered[index] * 1000


def build_request(host: str, port: int, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    """The raw bytes of one POST."""
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


async def _connection(
    host: str, port: int, queue: asyncio.Queue[bytes | None], result: dict[str, list[object]]
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while True:
            request = await queue.get()
            if request is None:
                return
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            body = await reader.readexactly(length)
            result["latencies"].append(time.perf_counter() - started)
            result["statuses"].append(status)
            if status == 202 and b"delivery_id" in body:
                start = body.index(b'"delivery_id":"') + 15
                result["ids"].append(body[start : start + 32].decode())
    finally:
        writer.close()


async def _run(host: str, port: int, requests: list[bytes], concurrency: int) -> LoadResult:
    queue: asyncio.Queue[bytes | None] = asyncio.Queue()
    for request in requests:
        queue.put_nowait(request)
    for _ in range(concurrency):
        queue.put_nowait(None)
    result: dict[str, list[object]] = {"latencies": [], "statuses": [], "ids": []}
    started = time.perf_counter()
    await asyncio.gather(*(_connection(host, port, queue, result) for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    return LoadResult(
        elapsed=elapsed,
        latencies=[float(x) for x in result["latencies"]],  # type: ignore[arg-type]
        statuses=dict(Counter(int(x) for x in result["statuses"])),  # type: ignore[call-overload]
        accepted_ids=[str(x) for x in result["ids"]],
    )


def run_load(host: str, port: int, requests: list[bytes], concurrency: int) -> LoadResult:
    """Send every request over ``concurrency`` connections; time each one."""
    try:
        import uvloop

        return uvloop.run(_run(host, port, requests, concurrency))
    except ImportError:
        return asyncio.run(_run(host, port, requests, concurrency))
