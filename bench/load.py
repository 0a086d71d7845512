"""A lean HTTP/1.1 load generator: pre-built requests over keep-alive connections.

It runs in its own process (the machine has two cores: one for the server,
one for the load) and speaks just enough HTTP to time each request. Signed
deliveries are built here too, in the benchmark's process, just before each
chunk is sent: Frame.io signatures carry a timestamp the receiver refuses once
it is more than 300 s old.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import time
from collections import Counter

import attrs

try:
    from postflow_webhooks.adapters.http.signature import sign
except ImportError:  # the package is being rebuilt: Frame.io's v0 scheme, by hand

    def sign(secret: str, timestamp: str, body: bytes) -> str:
        """``v0=`` + hex HMAC-SHA256 of ``b"v0:" + timestamp + b":" + body``."""
        message = b"v0:" + timestamp.encode("ascii") + b":" + body
        return "v0=" + hmac.digest(secret.encode("utf-8"), message, "sha256").hex()


WEBHOOK_PATH = "/frameio-webhook"
# Status recorded for a request whose connection broke before it was answered.
CONNECTION_ERROR = 0


@attrs.frozen
class LoadResult:
    """What one load run measured; times are ``time.monotonic()``, shared by all processes."""

    started_at: float
    ended_at: float
    latencies: list[float]
    statuses: dict[int, int]
    accepted_ids: list[str]

    @property
    def elapsed(self) -> float:
        """Seconds from the first request sent to the last answer read."""
        return self.ended_at - self.started_at

    @property
    def answered(self) -> int:
        """Requests that got an HTTP answer, whatever its status."""
        return sum(n for status, n in self.statuses.items() if status != CONNECTION_ERROR)

    @property
    def accepted(self) -> int:
        """Requests answered 202."""
        return self.statuses.get(202, 0)

    @property
    def rate(self) -> float:
        """Answered requests per second."""
        return self.answered / self.elapsed if self.elapsed else 0.0

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


def delivery_body(index: int) -> bytes:
    """A unique Frame.io V4 ``file.upload.completed`` event, numbered ``index``."""
    return json.dumps(
        {
            "type": "file.upload.completed",
            "resource": {"id": f"bench-file-{index}", "type": "file"},
            "account": {"id": "acc"},
            "workspace": {"id": "ws"},
            "project": {"id": "proj"},
            "user": {"id": "user"},
        }
    ).encode()


def signed_deliveries(host: str, port: int, secret: str, start: int, count: int) -> list[bytes]:
    """``count`` unique deliveries numbered from ``start``, signed with ``secret`` now."""
    stamp = str(int(time.time()))
    requests = []
    for index in range(start, start + count):
        body = delivery_body(index)
        headers = {
            "Content-Type": "application/json",
            "X-Frameio-Request-Timestamp": stamp,
            "X-Frameio-Signature": sign(secret, stamp, body),
        }
        requests.append(build_request(host, port, WEBHOOK_PATH, body, headers))
    return requests


async def _read_answer(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """Status, body and whether the server will close the connection."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length, chunked, close = 0, False, False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name, value = name.strip().lower(), value.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding":
            chunked = b"chunked" in value
        elif name == b"connection":
            close = value == b"close"
    if not chunked:
        return status, await reader.readexactly(length), close
    body = b""
    while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
        body += (await reader.readexactly(size + 2))[:-2]
    await reader.readuntil(b"\r\n")  # the trailer's end
    return status, body, close


def _delivery_id(body: bytes) -> str | None:
    try:
        answer = json.loads(body)
    except ValueError:
        return None
    found = answer.get("delivery_id") if isinstance(answer, dict) else None
    return str(found) if found else None


async def _connection(
    host: str,
    port: int,
    queue: asyncio.Queue[bytes | None],
    latencies: list[float],
    statuses: list[int],
    ids: list[str],
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while (request := await queue.get()) is not None:
            started = time.perf_counter()
            try:
                writer.write(request)
                status, body, close = await _read_answer(reader)
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                status, body, close = CONNECTION_ERROR, b"", True
            else:
                latencies.append(time.perf_counter() - started)
            statuses.append(status)
            if status == 202 and (delivery_id := _delivery_id(body)):
                ids.append(delivery_id)
            if close:
                writer.close()
                reader, writer = await asyncio.open_connection(host, port)
    finally:
        writer.close()


async def _run(host: str, port: int, requests: list[bytes], concurrency: int) -> LoadResult:
    queue: asyncio.Queue[bytes | None] = asyncio.Queue()
    for request in requests:
        queue.put_nowait(request)
    for _ in range(concurrency):
        queue.put_nowait(None)
    latencies: list[float] = []
    statuses: list[int] = []
    ids: list[str] = []
    started = time.monotonic()
    await asyncio.gather(
        *(_connection(host, port, queue, latencies, statuses, ids) for _ in range(concurrency))
    )
    return LoadResult(
        started_at=started,
        ended_at=time.monotonic(),
        latencies=latencies,
        statuses=dict(Counter(statuses)),
        accepted_ids=ids,
    )


def run_load(host: str, port: int, requests: list[bytes], concurrency: int) -> LoadResult:
    """Send every request over ``concurrency`` connections; time each one."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(_run(host, port, requests, concurrency))
    return uvloop.run(_run(host, port, requests, concurrency))
