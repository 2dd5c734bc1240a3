"""Chaos tests start the whole suite as processes, at the size `scale` says; the
checker's report of every run is printed again at the end of the session."""

from __future__ import annotations

import pytest

from tests.chaos.scale import Scale, scale
from tests.support.checker import PUBLISHED


@pytest.fixture(scope="session")
def size() -> Scale:
    return scale()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if PUBLISHED:
        terminalreporter.section("chaos checker reports")
        for line in PUBLISHED:
            terminalreporter.write_line(line)
