"""Chaos tests start the whole suite as processes, at the size `scale` says."""

from __future__ import annotations

import pytest

from tests.chaos.scale import Scale, scale


@pytest.fixture(scope="session")
def size() -> Scale:
    return scale()
