"""The plain z-score baseline Vigil's detector is compared with.

What a team writes first: the mean and standard deviation of the previous `WINDOW`
readings, z = (x - mean) / std, alert at |z| >= 3. Its score is |z| / 6 capped at 1,
so the same 0.5 threshold means |z| >= 3. O(1) per reading with running sums. Pure; no
I/O.
"""

from __future__ import annotations

import math
from collections import deque

WINDOW = 100
Z_ALERT = 3.0


def zscore_scores(values: list[float]) -> list[float]:
    """One score per value, from the previous `WINDOW` values only."""
    scores: list[float] = []
    recent: deque[float] = deque()
    total = 0.0
    squares = 0.0
    for x in values:
        count = len(recent)
        score = 0.0
        if count >= 10:
            mean = total / count
            var = max(squares / count - mean * mean, 0.0) * count / (count - 1)
            std = math.sqrt(var)
            if std > 0.0:
                score = min(1.0, abs(x - mean) / std / (2 * Z_ALERT))
            elif x != mean:
                score = 1.0
        scores.append(score)
        recent.append(x)
        total += x
        squares += x * x
        if count + 1 > WINDOW:
            old = recent.popleft()
            total -= old
            squares -= old * old
    return scores
