from __future__ import annotations

import itertools

from services.detector.engine import ESCALATED, OPENED, RESOLVED, Detector
from services.detector.rules.model import load_text

RULES = load_text(
    """
episodes: {quiet_readings: 3}
sensors:
  temperature:
    thresholds:
      - {above: 95, severity: critical}
      - {above: 80, severity: warning}
      - {below: 0, severity: info}
"""
)


def detector() -> Detector:
    ids = (f"ep-{i}" for i in itertools.count(1))
    return Detector(RULES, new_id=lambda: next(ids))


def test_threshold_sets_severity_score_and_reason() -> None:
    outcome = detector().process("d", [("temperature", 1.0, 97.2)])
    [verdict] = outcome.anomalies
    assert verdict.severity == 3 and verdict.score == 1.0
    assert verdict.reasons == ["value 97.2 above critical threshold 95"]
    assert outcome.max_score == 1.0


def test_below_threshold_and_unknown_sensor() -> None:
    outcome = detector().process("d", [("temperature", 1.0, -5.0), ("humidity", 1.0, 1e9)])
    assert [v.sensor for v in outcome.anomalies] == ["temperature"]
    assert outcome.anomalies[0].reasons == ["value -5 below info threshold 0"]


def test_incident_is_one_episode_that_escalates_then_resolves() -> None:
    d = detector()
    values = [85, 86, 99, 98, 85, 50, 50, 50, 50]
    changes = []
    for i, value in enumerate(values):
        changes += d.process("d", [("temperature", float(i), float(value))]).changes
    assert [(c.kind, c.episode_id, c.severity) for c in changes] == [
        (OPENED, "ep-1", 2),
        (ESCALATED, "ep-1", 3),
        (RESOLVED, "ep-1", 3),
    ]


def test_quiet_count_restarts_on_a_new_anomaly() -> None:
    d = detector()
    kinds = []
    for i, value in enumerate([90, 50, 50, 90, 50, 50, 50]):
        kinds += [c.kind for c in d.process("d", [("temperature", float(i), float(value))]).changes]
    assert kinds == [OPENED, RESOLVED]


def test_series_of_different_devices_are_independent() -> None:
    d = detector()
    a = d.process("a", [("temperature", 1.0, 99.0)])
    b = d.process("b", [("temperature", 1.0, 99.0)])
    assert a.changes[0].episode_id != b.changes[0].episode_id
