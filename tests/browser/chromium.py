"""A small driver for Debian's headless Chromium over the DevTools protocol (no download).

Chromium is started with a fresh profile and ``--remote-debugging-port=0``; it
prints the browser's websocket address on stderr, and we speak the DevTools
protocol over it with the ``websockets`` package (it comes with
``uvicorn[standard]``). One page target is attached in "flatten" mode, so
every command for it carries its ``sessionId``. Nothing is fetched from the
internet: the flags turn off background networking, component updates and
sync. Used by the browser tests and by ``bench/bench_page.py``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
    "--disable-extensions",
    "--mute-audio",
    "--window-size=1280,900",
)
LISTENING = re.compile(r"DevTools listening on (ws://\S+)")
KEYS = {
    "Tab": {"key": "Tab", "code": "Tab", "windowsVirtualKeyCode": 9},
    "Enter": {"key": "Enter", "code": "Enter", "windowsVirtualKeyCode": 13, "text": "\r"},
    "Escape": {"key": "Escape", "code": "Escape", "windowsVirtualKeyCode": 27},
}


class BrowserError(RuntimeError):
    """Chromium did not start, or a DevTools command failed."""


def find_chromium() -> str | None:
    """The Chromium executable: ``POSTFLOW_CHROMIUM``, else ``chromium`` on PATH."""
    explicit = os.environ.get("POSTFLOW_CHROMIUM")
    if explicit:
        return explicit
    return shutil.which("chromium") or shutil.which("chromium-browser")


class Page:
    """One tab: navigate, evaluate, type, press keys, take screenshots."""

    def __init__(self, browser: Chromium, session: str) -> None:
        self._browser = browser
        self.session = session

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        """One DevTools command for this tab."""
        return await self._browser.send(method, session=self.session, **params)

    async def goto(self, url: str, timeout: float = 20.0) -> None:
        """Load ``url`` and wait for its load event."""
        loaded = self._browser.expect("Page.loadEventFired", self.session)
        await self.send("Page.navigate", url=url)
        await asyncio.wait_for(loaded, timeout)

    async def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression (promises awaited)."""
        answer = await self.send(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in answer:
            detail = answer["exceptionDetails"]
            text = detail.get("exception", {}).get("description") or detail.get("text")
            raise BrowserError(f"JavaScript failed: {text}")
        return answer.get("result", {}).get("value")

    async def wait_for(self, expression: str, timeout: float = 15.0) -> Any:
        """Poll a JavaScript expression until it is truthy; its value."""
        deadline = time.monotonic() + timeout
        while True:
            value = await self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"not true within {timeout} s: {expression}")
            await asyncio.sleep(0.05)

    async def press(self, name: str, *, shift: bool = False) -> None:
        """Press and release a key (``Tab``, ``Enter``, ``Escape``)."""
        key = dict(KEYS[name])
        modifiers = 8 if shift else 0
        down = "keyDown" if "text" in key else "rawKeyDown"
        await self.send("Input.dispatchKeyEvent", type=down, modifiers=modifiers, **key)
        key.pop("text", None)
        await self.send("Input.dispatchKeyEvent", type="keyUp", modifiers=modifiers, **key)

    async def type(self, text: str) -> None:
        """Type text into the focused element."""
        await self.send("Input.insertText", text=text)

    async def screenshot(self, path: Path) -> Path:
        """Save a PNG of the whole page."""
        answer = await self.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        path.write_bytes(base64.b64decode(answer["data"]))
        return path


class Chromium:
    """A headless Chromium process and its DevTools connection."""

    def __init__(self, executable: str, profile: Path) -> None:
        self.executable = executable
        self.profile = profile
        self._process: subprocess.Popen[bytes] | None = None
        self._ws: ClientConnection | None = None
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._events: list[tuple[str, str | None, asyncio.Future[dict[str, Any]]]] = []
        self._reader: asyncio.Task[None] | None = None
        self.console: list[str] = []
        self.errors: list[str] = []
        self.log = profile / "chromium.log"

    async def start(self) -> None:
        """Start Chromium and connect to it."""
        argv = [
            self.executable,
            *FLAGS,
            f"--user-data-dir={self.profile}",
            "--remote-debugging-port=0",
            "about:blank",
        ]
        with open(self.log, "wb") as sink:
            self._process = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=sink
            )
        address = await self._address()
        self._ws = await connect(address, max_size=64 * 1024 * 1024)
        self._reader = asyncio.create_task(self._read())

    async def _address(self) -> str:
        """The websocket address Chromium prints on stderr once it listens."""
        assert self._process is not None
        deadline = time.monotonic() + 30
        text = ""
        while time.monotonic() < deadline:
            text = self.log.read_text(errors="replace")
            found = LISTENING.search(text)
            if found:
                return found.group(1)
            if self._process.poll() is not None:
                break
            await asyncio.sleep(0.02)
        raise BrowserError(f"chromium did not start: {text[-2000:]}")

    async def _read(self) -> None:
        assert self._ws is not None
        async for raw in self._ws:
            message = json.loads(raw)
            if "id" in message:
                future = self._waiting.pop(message["id"], None)
                if future is not None and not future.done():
                    future.set_result(message)
                continue
            method, session = message.get("method"), message.get("sessionId")
            if method == "Runtime.exceptionThrown":
                detail = message["params"].get("exceptionDetails", {})
                text = detail.get("exception", {}).get("description") or detail.get("text")
                self.errors.append(str(text))
            if method == "Runtime.consoleAPICalled":
                args = message["params"].get("args", [])
                self.console.append(
                    " ".join(str(a.get("value", a.get("description"))) for a in args)
                )
            for wanted in list(self._events):
                name, on, future = wanted
                if name == method and (on is None or on == session) and not future.done():
                    future.set_result(message.get("params", {}))
                    self._events.remove(wanted)

    def expect(self, method: str, session: str | None = None) -> asyncio.Future[dict[str, Any]]:
        """A future for the next event ``method`` (of ``session``)."""
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._events.append((method, session, future))
        return future

    async def send(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        """One DevTools command; its ``result``."""
        assert self._ws is not None
        ident = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[ident] = future
        message: dict[str, Any] = {"id": ident, "method": method, "params": params}
        if session is not None:
            message["sessionId"] = session
        await self._ws.send(json.dumps(message))
        answer = await asyncio.wait_for(future, 30)
        if "error" in answer:
            raise BrowserError(f"{method}: {answer['error']}")
        return answer.get("result", {})

    async def new_page(self, width: int = 1280, height: int = 900) -> Page:
        """A fresh tab, attached, with Page and Runtime events on."""
        target = await self.send("Target.createTarget", url="about:blank")
        attached = await self.send(
            "Target.attachToTarget", targetId=target["targetId"], flatten=True
        )
        page = Page(self, attached["sessionId"])
        await page.send("Page.enable")
        await page.send("Runtime.enable")
        await page.send(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )
        return page

    async def close(self) -> None:
        """Close the connection and stop Chromium."""
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self.send("Browser.close")
            await self._ws.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(BaseException):
                await self._reader
        if self._process is not None:
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()


@contextlib.asynccontextmanager
async def chromium(executable: str | None = None) -> AsyncIterator[Chromium]:
    """A started Chromium with a throwaway profile, closed on exit."""
    found = executable or find_chromium()
    if found is None:
        raise BrowserError(
            "chromium not found: install Debian's chromium (apt-get install chromium)"
        )
    with tempfile.TemporaryDirectory(prefix="postflow-chromium-") as profile:
        browser = Chromium(found, Path(profile))
        await browser.start()
        try:
            yield browser
        finally:
            await browser.close()
