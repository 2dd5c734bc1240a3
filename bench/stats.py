"""Order statistics of measured samples; plain functions, no I/O."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence


def percentile(samples: Sequence[float], q: float) -> float:
    """The q-quantile (0 <= q <= 1) by the nearest-rank method; NaN for no samples."""
    if not samples:
        return math.nan
    ordered = sorted(samples)
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[min(len(ordered), rank) - 1]


def steady_rate(times: Sequence[float], per_event: float, trim: float = 0.2) -> float:
    """Events per second (times `per_event`) between the `trim` and `1 - trim` quantiles
    of their arrival times: the steady middle, without ramp-up and stragglers."""
    if len(times) < 10:
        return math.nan
    ordered = sorted(times)
    lo, hi = int(trim * len(ordered)), int((1 - trim) * len(ordered)) - 1
    span = ordered[hi] - ordered[lo]
    return (hi - lo) * per_event / span if span > 0 else math.nan


def median(samples: Sequence[float]) -> float:
    return statistics.median(samples) if samples else math.nan
