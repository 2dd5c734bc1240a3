"""How many cases each door gets: a few in `make test`, many with VIGIL_CHAOS=full.

Every fuzz test takes its hypothesis settings from `cases(door)` and counts each case
it runs with `ran(door)`; `make chaos` prints the count per door at the end (see
conftest.py). Pure doors (validation functions, file parsers) are cheap and carry most
of a full run; network doors get fewer, each case a real round trip on 127.0.0.1.
"""

from __future__ import annotations

import os
from collections import Counter
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

FULL = os.environ.get("VIGIL_CHAOS") == "full"

#: Cases per door: (make test, make chaos).
PURE = (60, 9_000)
NETWORK = (12, 1_000)
SLOW_NETWORK = (6, 300)

COUNTS: Counter[str] = Counter()

#: One fuzz test of a full run takes minutes; the suite's default timeout is 120 s.
TIMEOUT = pytest.mark.timeout(3600 if FULL else 120)


def cases(size: tuple[int, int], **extra: Any) -> settings:
    """Hypothesis settings for a door of this size: no deadline (loaded machines), no
    example database (runs must not depend on earlier runs' files)."""
    return settings(
        max_examples=size[1] if FULL else size[0],
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        **extra,
    )


def ran(door: str) -> None:
    COUNTS[door] += 1
