"""Chaos tests start the whole suite as processes, at the size `scale` says; the
checker's report of every run is printed again at the end of the session."""

from __future__ import annotations

import pytest

from tests.chaos.scale import Scale, scale


@pytest.fixture(scope="session")
def size() -> Scale:
    return scale()
