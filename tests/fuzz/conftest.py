"""Fuzz tests print how many cases each door ran, for the record of a full run."""

from __future__ import annotations

import pytest

from tests.fuzz.sizes import COUNTS, FULL


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not COUNTS:
        return
    mode = "full (VIGIL_CHAOS=full)" if FULL else "small"
    terminalreporter.section(f"fuzz cases per door, {mode}")
    for door, count in sorted(COUNTS.items()):
        terminalreporter.write_line(f"{door:<40} {count:>8,}")
    terminalreporter.write_line(f"{'total':<40} {sum(COUNTS.values()):>8,}")
