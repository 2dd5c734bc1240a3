"""The detector's logic: a verdict for every reading and the episodes they form.

A plain function of (state, reading) with no I/O: the server feeds it batches, the
replay tool feeds it CSV rows, the tests feed it lists. An episode is one incident of
one series (device, sensor): it opens on the first anomalous reading, escalates when a
reading is more severe than any before in it, and resolves after `quiet_readings`
consecutive normal readings, so one incident is one alert with updates, not a storm.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from services.detector.rules.model import Rules

OPENED, ESCALATED, RESOLVED = "opened", "escalated", "resolved"
SEVERITY_SCORE = {0: 0.0, 1: 0.6, 2: 0.8, 3: 1.0}


def new_episode_id() -> str:
    return "ep-" + secrets.token_hex(8)


@dataclass(slots=True)
class Verdict:
    sensor: str
    time: float
    value: float
    score: float
    severity: int
    reasons: list[str]
    episode_id: str = ""


@dataclass(slots=True)
class Change:
    kind: str
    episode_id: str
    sensor: str
    severity: int
    verdict: Verdict
    started: float


@dataclass(slots=True)
class BatchOutcome:
    anomalies: list[Verdict] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    max_score: float = 0.0


@dataclass(slots=True)
class SeriesState:
    episode_id: str = ""
    peak: int = 0
    started: float = 0.0
    quiet: int = 0


class Detector:
    """Per-series state and the rules that judge each reading."""

    def __init__(self, rules: Rules, new_id: Callable[[], str] = new_episode_id) -> None:
        self.rules = rules
        self.new_id = new_id
        self.series: dict[tuple[str, str], SeriesState] = {}

    def judge(self, sensor: str, value: float) -> tuple[int, list[str]]:
        """Severity and reasons of one value by the rules alone."""
        spec = self.rules.for_sensor(sensor)
        if spec is not None:
            for threshold in spec.thresholds:
                if threshold.matches(value):
                    return threshold.severity, [threshold.reason(value)]
        return 0, []

    def process(self, device_id: str, readings: Iterable[tuple[str, float, float]]) -> BatchOutcome:
        """Judge (sensor, time, value) readings of one device, in order."""
        outcome = BatchOutcome()
        series = self.series
        for sensor, at, value in readings:
            severity, reasons = self.judge(sensor, value)
            score = SEVERITY_SCORE[severity]
            verdict = Verdict(sensor, at, value, score, severity, reasons)
            key = (device_id, sensor)
            state = series.get(key)
            if state is None:
                state = series[key] = SeriesState()
            change = self._advance(state, verdict)
            if change is not None:
                outcome.changes.append(change)
            if severity:
                outcome.anomalies.append(verdict)
            outcome.max_score = max(outcome.max_score, score)
        return outcome

    def _advance(self, state: SeriesState, verdict: Verdict) -> Change | None:
        if verdict.severity:
            state.quiet = 0
            if not state.episode_id:
                state.episode_id, state.peak, state.started = (
                    self.new_id(),
                    verdict.severity,
                    verdict.time,
                )
                verdict.episode_id = state.episode_id
                return Change(
                    OPENED, state.episode_id, verdict.sensor, state.peak, verdict, state.started
                )
            verdict.episode_id = state.episode_id
            if verdict.severity > state.peak:
                state.peak = verdict.severity
                return Change(
                    ESCALATED, state.episode_id, verdict.sensor, state.peak, verdict, state.started
                )
            return None
        if not state.episode_id:
            return None
        state.quiet += 1
        if state.quiet < self.rules.quiet_readings:
            return None
        change = Change(
            RESOLVED, state.episode_id, verdict.sensor, state.peak, verdict, state.started
        )
        state.episode_id, state.peak, state.quiet = "", 0, 0
        return change
