"""Browser tests need Debian's chromium. They never skip quietly.

Without chromium the tests fail, saying how to install it, unless
``POSTFLOW_BROWSER_TESTS=off`` is set: ``make test`` sets it only after
failing to install chromium and printing so, and then the browser tests are
deselected and the end of the run says, loudly, that they did not run.
"""

from __future__ import annotations

import os

import pytest

from tests.browser.chromium import find_chromium

NOT_RUN: list[str] = []
BANNER = "BROWSER TESTS DID NOT RUN"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect the browser tests only when asked to and chromium is missing."""
    if find_chromium() is not None or os.environ.get("POSTFLOW_BROWSER_TESTS") != "off":
        return
    browser = [item for item in items if "tests/browser/" in item.nodeid]
    if browser:
        NOT_RUN.extend(item.nodeid for item in browser)
        config.hook.pytest_deselected(items=browser)
        items[:] = [item for item in items if item not in browser]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say loudly that the browser tests did not run, and why."""
    if not NOT_RUN:
        return
    line = "!" * 78
    terminalreporter.write_line(line, red=True, bold=True)
    terminalreporter.write_line(
        f"{BANNER}: chromium is not installed ({len(NOT_RUN)} tests deselected). "
        "Install it with: apt-get install chromium",
        red=True,
        bold=True,
    )
    terminalreporter.write_line(line, red=True, bold=True)
