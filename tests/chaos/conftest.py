"""Chaos tests start the whole suite as processes, at the size `scale` says; the
checker's report of every run is printed again at the end of the session."""

from __future__ import annotations

from collections.abc import Generator

import pytest

from tests.chaos.scale import Scale, scale
from tests.support import summary
from tests.support.checker import PUBLISHED


@pytest.fixture(scope="session")
def size() -> Scale:
    return scale()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item,
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """The reports a test published go on its report, for the end of the session."""
    report = yield
    for line in PUBLISHED:
        summary.attach(report, summary.CHAOS, line)
    PUBLISHED.clear()
    return report
