"""The status page's first paint with 10,000 tracked files, in Debian's headless Chromium.

Two receivers run under the benchmark's uvicorn settings (``servers.py``): one
with an empty database (the baseline, measured in the same run) and one that
was sent ``BENCH_PAGE_FILES`` (10,000) signed deliveries, each a file of its
own with a name and one of four statuses. Chromium loads each page
``BENCH_PAGE_LOADS`` times after one warm-up load, in a fresh tab each time.

Two figures per load, both in milliseconds from the start of navigation, read
from the page itself: the browser's first contentful paint, and the moment the
first page of files (and the receiver's state) has been drawn: the page
marks ``postflow:files-painted`` in the animation frame after it rendered
them. The target (under 300 ms) applies to the second one: a page that paints
its header quickly but its files late would not meet it. The JSON the page
reads is timed on its own too. The figures are printed beside the target and
the empty baseline; nothing here asserts.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import attrs
import httpx
from tests.browser.chromium import Chromium, chromium, find_chromium

from bench import load
from bench.servers import (
    HOST,
    RECEIVER_FACTORY,
    Server,
    ServerError,
    free_port,
    receiver_env,
    uvicorn_command,
)

FILES = int(os.environ.get("BENCH_PAGE_FILES", "10000"))
LOADS = int(os.environ.get("BENCH_PAGE_LOADS", "10"))
TARGET_MS = 300.0
SECRET = "bench-page-secret"
STATUSES = [
    ("file.ready", {}),
    ("review.status.changed", {"review_status": "needs_review"}),
    ("review.status.changed", {"review_status": "approved"}),
    ("file.upload.completed", {}),
]
PAINTED = "performance.getEntriesByName('postflow:files-painted').length > 0"
FIGURES = (
    "JSON.stringify({files: performance.getEntriesByName('postflow:files-painted')[0].startTime,"
    " fcp: (performance.getEntriesByName('first-contentful-paint')[0] || {}).startTime,"
    " rows: document.querySelectorAll('#files tr[data-file-id]').length})"
)


def _requests(port: int, count: int) -> list[bytes]:
    """``count`` signed PostFlow-dialect deliveries, one new file each, four statuses."""
    stamp = str(int(time.time()))
    built = []
    for index in range(count):
        event, extra = STATUSES[index % len(STATUSES)]
        body = json.dumps(
            {
                "event_type": event,
                "resource": {
                    "id": f"page-file-{index:05d}",
                    "name": f"SH{index:05d}_comp_v{index % 9 + 1:03d}.mov",
                    **extra,
                },
            }
        ).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Frameio-Request-Timestamp": stamp,
            "X-Frameio-Signature": load.sign(SECRET, stamp, body),
        }
        built.append(load.build_request(HOST, port, load.WEBHOOK_PATH, body, headers))
    return built


def _fill(server: Server, count: int) -> float:
    """Send ``count`` deliveries and wait until they are applied; seconds it took."""
    started = time.monotonic()
    for start in range(0, count, 2000):
        batch = _requests(server.port, min(2000, count - start))
        result = load.run_load(HOST, server.port, batch, concurrency=32)
        if result.accepted != len(batch):
            raise ServerError(f"only {result.accepted} of {len(batch)} deliveries accepted")
    if server.wait_drained(timeout=120) is None:
        raise ServerError("the backlog did not drain")
    return time.monotonic() - started


async def _page_loads(browser: Chromium, url: str, loads: int) -> list[dict[str, float]]:
    """One warm-up load, then ``loads`` measured ones, each in a fresh tab."""
    figures = []
    for attempt in range(loads + 1):
        page = await browser.new_page()
        await page.goto(url)
        await page.wait_for(PAINTED, timeout=30)
        measured = json.loads(await page.evaluate(FIGURES))
        await browser.send("Target.closeTarget", targetId=await _target(browser, page.session))
        if attempt:
            figures.append(measured)
    return figures


async def _target(browser: Chromium, session: str) -> str:
    """The target id behind a page session."""
    info = await browser.send("Target.getTargetInfo", session=session)
    return str(info["targetInfo"]["targetId"])


def _json_ms(url: str, path: str, loads: int) -> float:
    """Median milliseconds for one GET of the page's JSON."""
    times = []
    with httpx.Client(base_url=url, timeout=10) as client:
        client.get(path)
        for _ in range(loads):
            started = time.perf_counter()
            client.get(path).raise_for_status()
            times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


@attrs.frozen
class PageFigures:
    """What one receiver's page measured."""

    painted: list[float]
    fcp: list[float]
    rows: int
    overview_ms: float
    files_ms: float
    search_ms: float


def _measure(server: Server, executable: str) -> PageFigures:
    """The page's figures on one running receiver."""

    async def run() -> list[dict[str, float]]:
        async with chromium(executable) as browser:
            return await _page_loads(browser, f"{server.url}/", LOADS)

    loads = asyncio.run(run())
    return PageFigures(
        painted=[f["files"] for f in loads],
        fcp=[f["fcp"] for f in loads if f.get("fcp") is not None],
        rows=int(loads[-1]["rows"]),
        overview_ms=_json_ms(server.url, "/ui/api/overview", LOADS),
        files_ms=_json_ms(server.url, "/ui/api/files?limit=50", LOADS),
        search_ms=_json_ms(server.url, "/ui/api/files?q=SH0999&limit=50", LOADS),
    )


def _start(data_dir: Path) -> Server:
    port = free_port()
    command = uvicorn_command(RECEIVER_FACTORY, port, factory=True)
    return Server("receiver", command, receiver_env(SECRET, data_dir), port)


def _row(name: str, empty: float, full: float, target: str = "", verdict: str = "") -> str:
    return f"  {name:<34}{empty:>10.1f}{full:>14.1f}  {target:<10}{verdict}".rstrip()


def report(empty: PageFigures, full: PageFigures, fill_seconds: float) -> None:
    """Print each figure beside the empty baseline and the target."""
    median = statistics.median
    verdict = "PASS" if median(full.painted) < TARGET_MS else "MISS"
    print(f"\n== status page: first paint with {FILES:,} tracked files, headless Chromium ==")
    print(
        f"{LOADS} measured loads each after one warm-up, fresh tab per load; ms from the start "
        f"of navigation; the {FILES:,} files took {fill_seconds:.1f} s to send and apply"
    )
    print(f"  {'figure (ms)':<34}{'empty db':>10}{f'{FILES:,} files':>14}  target")
    rows = [
        ("files painted, median", median(empty.painted), median(full.painted)),
        ("files painted, slowest load", max(empty.painted), max(full.painted)),
        ("first contentful paint, median", median(empty.fcp), median(full.fcp)),
        ("GET /ui/api/overview, median", empty.overview_ms, full.overview_ms),
        ("GET /ui/api/files (50), median", empty.files_ms, full.files_ms),
        ("GET /ui/api/files?q=..., median", empty.search_ms, full.search_ms),
    ]
    for index, (name, before, after) in enumerate(rows):
        if index == 0:
            print(_row(name, before, after, f"< {TARGET_MS:.0f}", verdict))
        else:
            print(_row(name, before, after))
    print(f"  rows on the first page: {full.rows} (empty db: {empty.rows})")


def main() -> None:
    """Measure the page on an empty receiver and on one with ``FILES`` files."""
    executable = find_chromium()
    if executable is None:
        print(
            "\n== status page: NOT MEASURED: chromium is not installed (apt-get install chromium)"
        )
        return
    with tempfile.TemporaryDirectory() as tmp:
        with _start(Path(tmp) / "empty") as server:
            empty = _measure(server, executable)
        with _start(Path(tmp) / "full") as server:
            fill_seconds = _fill(server, FILES)
            full = _measure(server, executable)
    report(empty, full, fill_seconds)


if __name__ == "__main__":
    main()
