"""Scoring a detector's per-row scores against labelled anomaly windows.

A detector alerts on a row when its score reaches the threshold. Alerting rows are
grouped into alerts the way episodes group them (rows closer than `MERGE_ROWS` are one
alert). A window is detected when an alert starts or runs inside it (or up to `slack`
rows after it): its delay is the rows from the window's start to the first alerting
row. An alert that touches no window is a false alert. The first `WARMUP_ROWS` rows of
every series are not scored: every detector needs some history.

The window score follows the Numenta Anomaly Benchmark's standard profile: a detected
window earns 2/(1+e^(5y)) - 1, where y runs from -1 at the window's start to 0 at its
(slack-extended) end, so early detection earns almost 1 and late detection almost 0; a
missed window costs 1; a false alert costs 0.11. It is normalised to 0 for a detector
that never alerts and 100 for one that alerts on the first row of every window and
nowhere else. Pure functions; no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from services.detector.evaluation.corpus import Series, Window

MERGE_ROWS = 5
WARMUP_ROWS = 100
FALSE_ALERT_COST = 0.11


@dataclass(slots=True)
class Tally:
    """Counts over any number of series."""

    windows: int = 0
    detected: int = 0
    false_alerts: int = 0
    days: float = 0.0
    delays: list[int] = field(default_factory=list)
    earned: float = 0.0  # sum of window rewards and penalties

    def add(self, other: Tally) -> None:
        self.windows += other.windows
        self.detected += other.detected
        self.false_alerts += other.false_alerts
        self.days += other.days
        self.delays += other.delays
        self.earned += other.earned

    @property
    def precision(self) -> float | None:
        alerts = self.detected + self.false_alerts
        return self.detected / alerts if alerts and self.windows else None

    @property
    def recall(self) -> float | None:
        return self.detected / self.windows if self.windows else None

    @property
    def f1(self) -> float | None:
        p, r = self.precision, self.recall
        if p is None or r is None or p + r == 0:
            return None
        return 2 * p * r / (p + r)

    @property
    def median_delay(self) -> float | None:
        if not self.delays:
            return None
        ordered = sorted(self.delays)
        mid = len(ordered) // 2
        return float(ordered[mid]) if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2

    @property
    def false_alerts_per_day(self) -> float:
        return self.false_alerts / self.days if self.days else 0.0

    @property
    def window_score(self) -> float | None:
        if not self.windows:
            return None
        null = -float(self.windows)
        perfect = self.windows * _reward(-1.0)
        return 100 * (self.earned - null) / (perfect - null)


def _reward(y: float) -> float:
    return 2 / (1 + math.exp(5 * y)) - 1


def slack(window: Window) -> int:
    return max(5, (window.end - window.start + 1) // 10)


def alerts(scores: list[float], threshold: float) -> list[tuple[int, int]]:
    """Runs of alerting rows (first, last), merged across short quiet stretches."""
    runs: list[tuple[int, int]] = []
    for i in range(WARMUP_ROWS, len(scores)):
        if scores[i] < threshold:
            continue
        if runs and i - runs[-1][1] <= MERGE_ROWS:
            runs[-1] = (runs[-1][0], i)
        else:
            runs.append((i, i))
    return runs


def score_series(series: Series, scores: list[float], threshold: float) -> Tally:
    """The tally of one series' scores at `threshold`."""
    if len(scores) != len(series.values):
        raise ValueError(f"{series.name}: {len(scores)} scores for {len(series.values)} rows")
    tally = Tally(windows=len(series.windows), days=series.days)
    runs = alerts(scores, threshold)
    used = [False] * len(runs)
    for window in series.windows:
        end = window.end + slack(window)
        overlapping = [k for k, (lo, hi) in enumerate(runs) if lo <= end and hi >= window.start]
        for k in overlapping:
            used[k] = True
        first = max(runs[overlapping[0]][0], window.start) if overlapping else None
        if first is None:
            tally.earned -= 1.0
            continue
        tally.detected += 1
        tally.delays.append(first - window.start)
        y = (first - end) / (end - window.start)  # -1 at the start, 0 at the end
        tally.earned += _reward(y)
    tally.false_alerts = used.count(False)
    tally.earned -= FALSE_ALERT_COST * tally.false_alerts
    return tally
