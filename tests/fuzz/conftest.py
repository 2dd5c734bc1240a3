"""Fuzz tests count how many cases each door ran, for the record of a full run."""

from __future__ import annotations

import json
from collections.abc import Generator

import pytest

from tests.fuzz.sizes import COUNTS
from tests.support import summary


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item,
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """The cases a test ran go on its report, for the end of the session."""
    report = yield
    if COUNTS:
        summary.attach(report, summary.FUZZ, json.dumps(dict(COUNTS)))
        COUNTS.clear()
    return report
