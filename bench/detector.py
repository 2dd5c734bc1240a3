"""Detector readings per second on one core, rules only and rules + model, against a
plain rolling z-score in pure Python over the same readings.

Reuses `services.detector.evaluation.throughput` (the fleet of machines, the warm-up,
the engine and Detect-edge timings) so `make eval` and `make bench` measure the same
thing. Rules only: the shipped default rules with the model's levels off for every
series (the model still learns, as the service does when its levels are off, since
learned cadences feed the missing-data rule). Baseline: the z-score of
`services.detector.evaluation.baseline` (mean and deviation of the previous 100
readings, O(1) per reading) over each series' readings, handed to it already grouped
by series, which favours the baseline. One process, one thread.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from bench.report import Figure, Target
from bench.size import Size
from services.detector.engine import Detector
from services.detector.evaluation import throughput
from services.detector.evaluation.baseline import WINDOW, Z_ALERT
from services.detector.rules.parse import default_text, load, load_text
from services.detector.rules.spec import Rules

STAGE = "detector"
PER_BATCH = 100


def rules_only() -> Rules:
    """The shipped rules with the learned model's alert levels switched off."""
    text = default_text().replace("  model: {info: 0.7, warning: 0.9}", "  model: off", 1)
    rules = load_text(text, "default rules, model off")
    if rules.resolve("bench", {}, "temperature").model.lowest <= 1.0:
        raise RuntimeError("the default rules changed: could not switch the model off")
    return rules


class RollingZScore:
    """The baseline as a service would run it: per reading, find the series' state and
    score against the previous WINDOW readings (running sums, O(1)); |z| / 6 capped at
    1, the scale of `services.detector.evaluation.baseline`."""

    def __init__(self) -> None:
        self.series: dict[tuple[str, str], tuple[deque[float], list[float]]] = {}

    def process(self, device: str, rows: list[tuple[str, float, float]]) -> float:
        top = 0.0
        for sensor, _t, x in rows:
            state = self.series.get((device, sensor))
            if state is None:
                state = self.series[(device, sensor)] = (deque(), [0.0, 0.0])
            recent, sums = state
            count = len(recent)
            score = 0.0
            if count >= 10:
                mean = sums[0] / count
                std = math.sqrt(max(sums[1] / count - mean * mean, 0.0) * count / (count - 1))
                if std > 0.0:
                    score = min(1.0, abs(x - mean) / std / (2 * Z_ALERT))
            top = max(top, score)
            recent.append(x)
            sums[0] += x
            sums[1] += x * x
            if count + 1 > WINDOW:
                old = recent.popleft()
                sums[0] -= old
                sums[1] -= old * old
        return top


def zscore_rate(zscore: RollingZScore, rounds: list[list[Any]]) -> float:
    readings = sum(len(rows) for batches in rounds for _, rows in batches)
    started = time.perf_counter()
    for batches in rounds:
        for device, rows in batches:
            zscore.process(device, rows)
    return readings / (time.perf_counter() - started)


def _rate(readings: int, rates: list[float]) -> float:
    """Overall readings/s of rounds of `readings` each, from each round's rate."""
    return len(rates) * readings / sum(readings / r for r in rates)


def run(size: Size, progress: Callable[[str], None]) -> list[Figure]:
    devices, rounds = size.pick((1000, 8), (200, 4), (50, 2))
    progress(f"detector: {devices} devices x 4 sensors, warming up")
    warm = throughput.fleet_batches(devices, 2, 400, seed=1)  # 200 readings per series
    timed = throughput.fleet_batches(devices, rounds, PER_BATCH, seed=2)
    with_model = Detector(load(None), results_kept=4)
    without = Detector(rules_only(), results_kept=4)
    zscore = RollingZScore()
    for detector in (with_model, without):
        throughput.engine_rate(detector, warm, 0)
    zscore_rate(zscore, warm)
    progress("detector: rules + model, rules only and the z-score, round by round")
    # Round by round in turn, so a burst of load on the machine hits each alike.
    rates: dict[str, list[float]] = {"model": [], "rules": [], "zscore": []}
    half = rounds // 2
    for index, batches in enumerate(timed[:half]):
        rates["model"].append(throughput.engine_rate(with_model, [batches], 100 + index))
        rates["rules"].append(throughput.engine_rate(without, [batches], 100 + index))
        rates["zscore"].append(zscore_rate(zscore, [batches]))
    edge = throughput.edge_rate(with_model, timed[half:], 200)
    per_round = devices * PER_BATCH
    baseline = _rate(per_round, rates["zscore"])
    name = "plain rolling z-score, pure Python"
    params = {
        "devices": devices,
        "series": devices * 4,
        "batch_size": PER_BATCH,
        "readings": per_round * half,
        "process": "one thread",
    }

    def figure(title: str, key: str, target: Target | None = None) -> Figure:
        return Figure(
            STAGE,
            title,
            _rate(per_round, rates[key]),
            "readings/s",
            baseline,
            name,
            target,
            params,
            [round(r) for r in rates[key]],
        )

    return [
        figure("readings/s per core, rules only", "rules"),
        figure("readings/s per core, rules + model", "model", Target(">=", 200_000.0)),
        Figure(
            STAGE,
            "readings/s per core, Detect edge (protobuf in and out), rules + model",
            edge,
            "readings/s",
            baseline,
            name,
            None,
            {**params, "readings": per_round * (rounds - half)},
        ),
    ]
