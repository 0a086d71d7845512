"""Shared fixtures: async tests run on asyncio; a loud banner when PostgreSQL tests did not run."""

from __future__ import annotations

from typing import Any

import pytest

from tests.postgres import NOT_REACHABLE

_NOT_RUN: list[str] = []


@pytest.fixture
def anyio_backend() -> str:
    """Run ``@pytest.mark.anyio`` tests on asyncio only."""
    return "asyncio"


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Note each test skipped because PostgreSQL did not answer."""
    if report.skipped and NOT_REACHABLE in str(report.longrepr):
        text = report.longrepr[-1] if isinstance(report.longrepr, tuple) else report.longrepr
        _NOT_RUN.append(str(text).removeprefix("Skipped: ").splitlines()[0])


def pytest_unconfigure(config: Any) -> None:
    """Say loudly, as the very last lines, how many PostgreSQL tests did not run and why."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if not _NOT_RUN or reporter is None:
        return
    line = "!" * 78
    for text in (
        line,
        f"!!! {len(_NOT_RUN)} POSTGRESQL TESTS DID NOT RUN: {_NOT_RUN[0]}",
        "!!! Start PostgreSQL on 127.0.0.1:5432 (or set POSTFLOW_TEST_POSTGRES) and run again.",
        line,
    ):
        reporter.write_line(text, red=True, bold=True)
