"""Shared fixtures: async tests run on asyncio; a loud banner when PostgreSQL tests did not run."""

from __future__ import annotations

from typing import Any

import pytest

from tests.postgres import NOT_REACHABLE


@pytest.fixture
def anyio_backend() -> str:
    """Run ``@pytest.mark.anyio`` tests on asyncio only."""
    return "asyncio"


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: Any) -> None:
    """Say loudly, at the very end, how many PostgreSQL tests did not run and why."""
    skipped = [
        report
        for report in terminalreporter.stats.get("skipped", [])
        if NOT_REACHABLE in str(getattr(report, "longrepr", ""))
    ]
    if not skipped:
        return
    reason = str(skipped[0].longrepr[-1]) if isinstance(skipped[0].longrepr, tuple) else ""
    line = "!" * 78
    terminalreporter.write_line(line, red=True, bold=True)
    terminalreporter.write_line(
        f"!!! {len(skipped)} POSTGRESQL TESTS DID NOT RUN: {reason}", red=True, bold=True
    )
    terminalreporter.write_line(
        "!!! Start PostgreSQL on 127.0.0.1:5432 (or set POSTFLOW_TEST_POSTGRES) and run again.",
        red=True,
        bold=True,
    )
    terminalreporter.write_line(line, red=True, bold=True)
