"""Lines printed once at the end of a test session: the chaos checker's reports and the
fuzz case counts.

They are made inside tests, which may run in pytest-xdist workers, while the summary is
printed by the main process. So they travel on each test's report (`user_properties`,
which xdist sends back): the root conftest moves what a test produced onto its report
(`carry`), gathers it from every report (`gather`) and prints it (`print_summary`).
"""

from __future__ import annotations

import json
from collections import Counter

import pytest

from tests.fuzz.sizes import COUNTS
from tests.support.checker import PUBLISHED

CHAOS = "vigil chaos report"
FUZZ = "vigil fuzz cases"

_reports: list[str] = []
_cases: Counter[str] = Counter()


def carry(report: pytest.TestReport) -> None:
    """Move the reports and case counts made so far onto `report`."""
    report.user_properties.extend((CHAOS, line) for line in PUBLISHED)
    PUBLISHED.clear()
    if COUNTS:
        report.user_properties.append((FUZZ, json.dumps(dict(COUNTS))))
        COUNTS.clear()


def gather(report: pytest.TestReport) -> None:
    for key, value in report.user_properties:
        if key == CHAOS:
            _reports.append(str(value))
        elif key == FUZZ:
            _cases.update(json.loads(str(value)))


def print_summary(terminalreporter: pytest.TerminalReporter, fuzz_mode: str) -> None:
    if _cases:
        terminalreporter.section(f"fuzz cases per door, {fuzz_mode}")
        for door, count in sorted(_cases.items()):
            terminalreporter.write_line(f"{door:<40} {count:>8,}")
        terminalreporter.write_line(f"{'total':<40} {sum(_cases.values()):>8,}")
    if _reports:
        terminalreporter.section("chaos checker reports")
        for line in _reports:
            terminalreporter.write_line(line)
