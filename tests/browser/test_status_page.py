"""The status page in a real headless Chromium, driving a real receiver on loopback."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from postflow_webhooks.app.composition import create_app
from tests.browser.chromium import Chromium, Page, chromium
from tests.support import receiver_settings, running_server, wait_for

pytestmark = [pytest.mark.anyio, pytest.mark.slow, pytest.mark.timeout(90)]

ROWS = "[...document.querySelectorAll('#files tr[data-file-id]')].map(r => r.dataset.fileId)"
PNG = b"\x89PNG\r\n\x1a\n"

# WCAG's contrast ratio of an element's text against the first opaque background behind it.
CONTRAST = """
(el) => {
  const rgb = (c) => c.match(/[\\d.]+/g).map(Number);
  const lum = ([r, g, b]) => [r, g, b].map((v) => {
    v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
  }).reduce((sum, v, i) => sum + v * [0.2126, 0.7152, 0.0722][i], 0);
  let node = el, back = [255, 255, 255];
  while (node) {
    const c = rgb(getComputedStyle(node).backgroundColor);
    if (c.length < 4 || c[3] > 0) { back = c.slice(0, 3); break; }
    node = node.parentElement;
  }
  const [a, b] = [lum(rgb(getComputedStyle(el).color)), lum(back)];
  return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
}
"""


def deliver(url: str, file_id: str, name: str, event: str, **resource: Any) -> None:
    """An unsigned PostFlow-dialect delivery to the receiver."""
    body = {"event_type": event, "resource": {"id": file_id, "name": name, **resource}}
    assert httpx.post(f"{url}/frameio-webhook", json=body).status_code == 202


def seed(url: str) -> None:
    """Three shots at different stages, one with two comments (one resolved) and a link."""
    deliver(url, "f-010", "SH010_comp_v001.mov", "file.ready")
    deliver(url, "f-020", "SH020_comp_v003.mov", "file.ready", view_url="https://f.io/v/f-020")
    deliver(url, "f-020", "SH020_comp_v003.mov", "review.status.changed", review_status="approved")
    deliver(
        url,
        "f-020",
        "SH020_comp_v003.mov",
        "comment.created",
        comment_id="c1",
        text="Grade looks right now",
        author="Ana",
    )
    deliver(
        url,
        "f-020",
        "SH020_comp_v003.mov",
        "comment.created",
        comment_id="c2",
        text="Logo fixed in v3",
        author="Bo",
    )
    deliver(url, "f-020", "SH020_comp_v003.mov", "comment.completed", comment_id="c2")
    deliver(
        url, "f-030", "SH030_comp_v002.mov", "review.status.changed", review_status="needs_review"
    )
    wait_for(lambda: httpx.get(f"{url}/health").json()["backlog"] == 0)


async def rows(page: Page) -> list[str]:
    """The file ids of the rows shown, top to bottom."""
    return list(await page.evaluate(ROWS))


@asynccontextmanager
async def seeded_page(tmp_path: Path) -> AsyncIterator[tuple[str, Chromium, Page]]:
    """A receiver holding the seed's three files, and a page showing them; the receiver's URL."""
    settings = receiver_settings(tmp_path / "data")
    with running_server(create_app(settings), settings.port) as url:
        seed(url)
        async with chromium() as browser:
            page = await browser.new_page()
            await page.goto(f"{url}/")
            await until_rows(page, ["f-030", "f-020", "f-010"])
            yield url, browser, page


async def until_rows(page: Page, expected: list[str]) -> None:
    """Wait until the table shows exactly these files, in this order."""
    wanted = json.dumps(json.dumps(expected, separators=(",", ":")))
    await page.wait_for(f"JSON.stringify({ROWS}) === {wanted}")


async def test_the_page_renders_filters_updates_live_and_opens_a_timeline(tmp_path: Path) -> None:
    """Files sent by the test show; status and search filter; a new one appears; a timeline opens."""
    async with seeded_page(tmp_path) as (url, browser, page):
        labels = await page.evaluate(
            "[...document.querySelectorAll('#files .badge')].map(b => b.textContent)"
        )
        assert labels == ["WAITING_APPROVAL ⏳", "APPROVED ✅", "COMPLETED 🎉"]
        assert await page.evaluate("document.getElementById('verdict').textContent") == "Healthy"

        await page.evaluate(
            "(() => { const s = document.getElementById('status'); s.value = 'APPROVED';"
            " s.dispatchEvent(new Event('change')); })()"
        )
        await until_rows(page, ["f-020"])
        await page.evaluate(
            "(() => { const s = document.getElementById('status'); s.value = '';"
            " s.dispatchEvent(new Event('change')); })()"
        )
        await until_rows(page, ["f-030", "f-020", "f-010"])
        await page.evaluate("document.getElementById('search').focus()")
        await page.type("sh01")
        await until_rows(page, ["f-010"])
        await page.evaluate(
            "(() => { const s = document.getElementById('search'); s.value = '';"
            " s.dispatchEvent(new Event('input')); })()"
        )
        await until_rows(page, ["f-030", "f-020", "f-010"])

        await page.evaluate("window.__samePage = true")
        deliver(url, "f-040", "SH040_comp_v001.mov", "file.upload.completed")
        await until_rows(page, ["f-040", "f-030", "f-020", "f-010"])
        assert await page.evaluate("window.__samePage === true"), "no reload happened"

        await page.evaluate("document.querySelector('tr[data-file-id=\"f-020\"] button').click()")
        await page.wait_for("document.getElementById('timeline').open")
        timeline = await page.evaluate("document.getElementById('timeline').innerText")
        link = await page.evaluate(
            "document.querySelector('#timeline-body a[href^=\"https://f.io\"]').href"
        )
        comments = await page.evaluate(
            "[...document.querySelectorAll('#timeline-body ul.comments li')]"
            ".map(li => li.textContent)"
        )
        shot = await page.screenshot(tmp_path / "status-page-timeline.png")
        await page.evaluate("document.getElementById('close-timeline').click()")
        await page.wait_for("!document.getElementById('timeline').open")
        page_shot = await page.screenshot(tmp_path / "status-page.png")
        errors = list(browser.errors)
    assert "SH020_comp_v003.mov" in timeline
    assert "COMPLETED 🎉 → APPROVED ✅" in timeline and "review.status.changed" in timeline
    assert "Grade looks right now" in timeline and "Ana" in timeline
    assert [c.split(" (")[0] for c in comments] == ["open Ana", "resolved Bo"], comments
    assert "Logo fixed in v3" in timeline and "2 comment(s), 1 open." in timeline
    assert link == "https://f.io/v/f-020"
    for png in (shot, page_shot):
        assert png.read_bytes().startswith(PNG) and png.stat().st_size > 10_000
    assert errors == []


async def test_the_page_can_be_used_with_the_keyboard_and_reads_clearly(tmp_path: Path) -> None:
    """Every control has a label; Tab reaches them in order; Enter opens, Escape closes; contrast."""
    async with seeded_page(tmp_path) as (_url, browser, page):
        unnamed = await page.evaluate(
            "[...document.querySelectorAll('input, select, button, a')].filter(e =>"
            " !(e.labels && e.labels.length) && !e.getAttribute('aria-label')"
            " && !e.textContent.trim()).map(e => e.outerHTML)"
        )
        assert unnamed == []
        assert await page.evaluate("document.documentElement.lang") == "en"
        assert await page.evaluate("!!document.querySelector('table.files caption')")

        order = []
        for _ in range(4):
            await page.press("Tab")
            order.append(
                await page.evaluate(
                    "document.activeElement.id || document.activeElement.className"
                    " || document.activeElement.tagName"
                )
            )
        assert order == ["skip", "search", "status", "open"]
        outline = await page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
        assert outline != "none", "the keyboard focus is visible"
        opener = await page.evaluate("document.activeElement.textContent")
        await page.press("Enter")
        await page.wait_for("document.getElementById('timeline').open")
        assert await page.evaluate("document.activeElement.id") == "close-timeline"
        await page.press("Escape")
        await page.wait_for("!document.getElementById('timeline').open")
        assert await page.evaluate("document.activeElement.textContent") == opener

        ratios = await page.evaluate(
            f"(() => {{ const ratio = {CONTRAST};"
            " const probe = ['UPLOADING','PROCESSING','COMPLETED','FAILED',"
            "'WAITING_APPROVAL','APPROVED','REJECTED'].map(s => {"
            " const b = document.createElement('span'); b.className = 'badge ' + s;"
            " b.textContent = s; document.body.append(b); return b; });"
            " const els = [...probe, ...document.querySelectorAll("
            "'h1, h2, h3, dt, dd, th, td, caption, label, .verdict, .updated, .open, button')];"
            " return els.map(e => [e.className || e.tagName, ratio(e)]); })()"
        )
        errors = list(browser.errors)
    assert len(ratios) > 20 and all(isinstance(r, int | float) and r >= 1 for _, r in ratios)
    low = [(name, round(r, 2)) for name, r in ratios if not r >= 4.5]
    assert low == [], f"text below 4.5:1 contrast: {low}"
    assert min(r for _, r in ratios) < 21, "the measure sees real colours"
    assert errors == []
