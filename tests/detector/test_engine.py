"""The detector engine with a driven clock: every rule kind, episodes, idempotency,
offline and missing data with learned cadences, feedback."""

from __future__ import annotations

import itertools
import random

from services.detector.engine import Detector
from services.detector.episodes import ESCALATED, OPENED, RESOLVED
from services.detector.rules.parse import load_text

RULES = """
episodes: {quiet_readings: 3}
defaults:
  model: off
sensors:
  temperature:
    thresholds:
      - {above: 95, severity: critical}
      - {above: 80, severity: warning}
      - {below: 0, severity: info}
"""


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def detector(text: str = RULES, clock: Clock | None = None) -> Detector:
    ids = (f"ep-{i}" for i in itertools.count(1))
    return Detector(load_text(text), new_id=lambda: next(ids), clock=clock or Clock())


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
    changes = []
    for i, value in enumerate([85, 86, 99, 98, 85, 50, 50, 50, 50]):
        changes += d.process("d", [("temperature", float(i), float(value))]).changes
    assert [(c.kind, c.episode_id, c.severity) for c in changes] == [
        (OPENED, "ep-1", 2),
        (ESCALATED, "ep-1", 3),
        (RESOLVED, "ep-1", 3),
    ]


def test_ten_minute_spike_is_one_alert_with_escalations_not_hundreds() -> None:
    """One reading a second: 10 minutes of a value hopping between warning and
    critical, with the learned model on, is one episode: opened, escalated, resolved."""
    clock = Clock()
    d = detector(RULES.replace("model: off", "model: {info: 0.7}"), clock)
    rng = random.Random(3)
    changes = []
    anomalous = 0
    for i in range(1800):
        clock.now += 1.0
        if 600 <= i < 1200:  # the 10-minute incident
            value = rng.choice((85.0, 90.0, 97.0)) + rng.gauss(0, 1)
        else:
            value = 60.0 + rng.gauss(0, 1)
        outcome = d.process("press-1", [("temperature", clock.now, value)], seq=i + 1)
        changes += outcome.changes
        anomalous += len(outcome.anomalies)
    assert anomalous >= 600  # every incident reading is judged anomalous...
    kinds = [c.kind for c in changes]
    assert kinds == [OPENED, ESCALATED, RESOLVED]  # ...but it is one alert
    assert len({c.episode_id for c in changes}) == 1
    assert changes[1].severity == 3


def test_hysteresis_keeps_an_episode_open_near_the_alert_level() -> None:
    d = detector("episodes: {quiet_readings: 2, hold: 0.3}\nsensors: {}\n")
    rng = random.Random(1)
    for i in range(300):
        d.process("d", [("load", 60.0 * i, 50 + rng.gauss(0, 1))])
    opened = d.process("d", [("load", 60.0 * 300, 70.0)])
    assert [c.kind for c in opened.changes] == [OPENED]
    series = d.devices["d"].series["load"]
    assert series.episode.id
    series.model.tolerance = 100.0  # the model now scores ~0: quiet readings
    kinds = []
    for i in range(301, 304):
        kinds += [c.kind for c in d.process("d", [("load", 60.0 * i, 50.0)]).changes]
    assert kinds == [RESOLVED]


def test_quiet_seconds_delay_resolution() -> None:
    d = detector(RULES.replace("quiet_readings: 3", "quiet_readings: 2, quiet_seconds: 60"))
    d.process("d", [("temperature", 0.0, 90.0)])
    early = d.process("d", [("temperature", 10.0, 50.0), ("temperature", 20.0, 50.0)])
    assert early.changes == []
    late = d.process("d", [("temperature", 61.0, 50.0)])
    assert [c.kind for c in late.changes] == [RESOLVED]


def test_rate_of_change_rule() -> None:
    d = detector("defaults: {model: off}\nsensors:\n  p:\n    rate_of_change: {max: 2, per: 1s}\n")
    first = d.process("d", [("p", 0.0, 10.0), ("p", 1.0, 11.5), ("p", 2.0, 14.0)])
    [verdict] = first.anomalies
    assert verdict.value == 14.0 and verdict.severity == 2
    assert verdict.reasons == ["rose 2.5 in 1 s (limit 2 per 1 s)"]
    slow = d.process("d", [("p", 12.0, 30.0)])  # +16 over 10 s: 1.6 per second
    assert slow.anomalies == []


def test_stuck_rule_by_readings_and_by_time() -> None:
    d = detector(
        "defaults: {model: off}\nsensors:\n"
        "  a: {stuck: {readings: 4, severity: critical}}\n"
        "  b: {stuck: {for: 30s, tolerance: 0.1}}\n"
    )
    a = d.process("d", [("a", float(i), 5.0) for i in range(4)])
    assert [v.time for v in a.anomalies] == [3.0]
    assert a.anomalies[0].reasons == ["unchanged at 5 for 4 readings"]
    b = d.process("d", [("b", 10.0 * i, 7.0 + 0.01 * (i % 3)) for i in range(5)])
    assert [v.time for v in b.anomalies] == [30.0, 40.0]
    assert d.process("d", [("b", 50.0, 9.0)]).anomalies == []


def test_model_alone_flags_a_spike_with_its_reason() -> None:
    d = detector("sensors: {}\n")
    rng = random.Random(2)
    for i in range(400):
        d.process("d", [("flow", 10.0 * i, 20 + rng.gauss(0, 0.5))])
    [verdict] = d.process("d", [("flow", 4000.0, 31.0)]).anomalies
    assert verdict.severity == 2  # model warning level by default
    assert verdict.reasons[0].endswith("σ above its 2 min baseline")  # noqa: RUF001


def test_resent_batch_gets_the_same_outcome_and_does_not_advance_state() -> None:
    d = detector()
    first = d.process("d", [("temperature", 1.0, 99.0)], seq=1)
    state_n = d.devices["d"].series["temperature"].model.n
    again = d.process("d", [("temperature", 1.0, 99.0)], seq=1)
    assert again.duplicate and not first.duplicate
    assert [c.episode_id for c in again.changes] == [c.episode_id for c in first.changes]
    assert d.devices["d"].series["temperature"].model.n == state_n
    assert d.process("d", [("temperature", 2.0, 50.0)], seq=3).sequence == "gap"
    assert d.process("d", [("temperature", 3.0, 50.0)], seq=2).sequence == "regression"


def test_results_cache_is_bounded() -> None:
    d = Detector(load_text(RULES), results_kept=8)
    for seq in range(1, 100):
        d.process("d", [("temperature", float(seq), 50.0)], seq=seq)
    assert len(d.devices["d"].results) == 8


def test_series_of_different_devices_are_independent() -> None:
    d = detector()
    a = d.process("a", [("temperature", 1.0, 99.0)])
    b = d.process("b", [("temperature", 1.0, 99.0)])
    assert a.changes[0].episode_id != b.changes[0].episode_id


def test_offline_device_is_found_by_its_learned_cadence_and_resolves_on_data() -> None:
    clock = Clock()
    d = detector(RULES.replace("model: off", "model: off\ndevices:\n  offline: {after: 5x}"), clock)
    for _ in range(10):  # one batch every 10 s: the learned cadence
        clock.now += 10.0
        d.process("pump", [("temperature", clock.now, 50.0)])
    clock.now += 45.0
    assert d.sweep() == []  # 45 s < 5 x 10 s
    clock.now += 10.0
    [(device, change)] = d.sweep()
    assert device.device_id == "pump" and change.kind == OPENED and change.sensor == ""
    assert change.severity == 2
    assert change.verdict.reasons == ["no data for 55 s (it usually reports every 10 s)"]
    clock.now += 30.0
    assert d.sweep() == []  # one alert, not one per sweep
    back = d.process("pump", [("temperature", clock.now, 50.0)])
    assert [(c.kind, c.episode_id) for c in back.changes] == [(RESOLVED, change.episode_id)]


def test_a_resent_burst_does_not_teach_a_cadence_of_milliseconds() -> None:
    """After a reconnect a device resends its window within milliseconds; its readings
    were taken 2 s apart, and the next ordinary 2 s pause is no alert."""
    clock = Clock()
    rules = RULES.replace(
        "model: off", "model: off\n  missing: {after: 3x}\ndevices:\n  offline: {after: 5x}"
    )
    d = detector(rules, clock)
    taken = clock.now
    for _ in range(10):  # a fresh detector meets the device in the middle of a resend
        clock.now += 0.001
        taken += 2.0
        d.process("m", [("temperature", taken, 50.0), ("speed", taken, 3.0)])
    for _ in range(5):  # then it reports on time
        clock.now += 2.0
        taken += 2.0
        d.process("m", [("temperature", taken, 50.0), ("speed", taken, 3.0)])
        assert d.sweep() == []
    clock.now += 3.0  # a pause a little longer than usual
    assert d.sweep() == []
    clock.now += 20.0  # and a real silence is still found, in the device's own terms
    [(_, change)] = d.sweep()
    assert change.verdict.reasons == ["no data for 23 s (it usually reports every 2 s)"]


def test_a_device_whose_clock_stands_still_is_timed_by_arrivals() -> None:
    clock = Clock()
    d = detector(RULES.replace("model: off", "model: off\ndevices:\n  offline: {after: 5x}"), clock)
    for _ in range(10):
        clock.now += 10.0
        d.process("pump", [("temperature", 1000.0, 50.0)])  # the same reading time
    clock.now += 55.0
    [(_, change)] = d.sweep()
    assert change.verdict.reasons == ["no data for 55 s (it usually reports every 10 s)"]


def test_missing_sensor_while_the_device_reports() -> None:
    clock = Clock()
    d = detector(RULES.replace("model: off", "model: off\n  missing: {after: 3x}"), clock)
    for _ in range(10):
        clock.now += 5.0
        d.process("m", [("temperature", clock.now, 50.0), ("speed", clock.now, 3.0)])
    for _ in range(3):
        clock.now += 5.0
        d.process("m", [("temperature", clock.now, 50.0)])
        assert d.sweep() == []
    clock.now += 5.0
    d.process("m", [("temperature", clock.now, 50.0)])
    [(_, change)] = d.sweep()
    assert (change.sensor, change.kind) == ("speed", OPENED)
    assert change.verdict.reasons == ["no speed reading for 20 s (it usually comes every 5 s)"]
    back = d.process("m", [("speed", clock.now, 3.0)])
    assert [c.kind for c in back.changes] == [RESOLVED]


def test_no_offline_alert_before_the_cadence_is_known() -> None:
    clock = Clock()
    d = detector(clock=clock)
    d.process("new", [("temperature", clock.now, 50.0)])
    clock.now += 3600
    assert d.sweep() == []


def test_false_alarm_widens_the_series_tolerance_and_it_relaxes() -> None:
    clock = Clock()
    d = detector("sensors: {}\n", clock)
    d.process("d", [("flow", 1.0, 1.0)])
    assert d.false_alarm("d", "flow", "ep-x")
    assert d.devices["d"].series["flow"].model.tolerance == 1.25
    assert not d.false_alarm("other", "flow", "ep-x")
    assert d.false_alarm("d", "", "ep-y")
    assert d.devices["d"].tolerance == 1.25
    for _ in range(20):
        d.false_alarm("d", "flow", "ep-x")
    assert d.devices["d"].series["flow"].model.tolerance == 4.0  # capped
    clock.now += 7 * 86_400
    d.sweep()
    assert abs(d.devices["d"].series["flow"].model.tolerance - 2.5) < 1e-6  # half-life


def test_new_rules_apply_from_the_next_reading() -> None:
    d = detector()
    assert d.process("d", [("temperature", 1.0, 85.0)]).anomalies
    d.set_rules(load_text("defaults: {model: off}\nsensors: {temperature: {}}\n"))
    assert d.process("d", [("temperature", 2.0, 85.0)]).anomalies == []


def test_label_overrides_follow_the_device_labels() -> None:
    d = detector(
        RULES
        + "overrides:\n  - match: {labels: {site: north}}\n"
        + "    sensors: {temperature: {thresholds: [{above: 100, severity: info}]}}\n"
    )
    assert d.process("x", [("temperature", 1.0, 90.0)], labels={"site": "south"}).anomalies
    assert not d.process("x", [("temperature", 2.0, 90.0)], labels={"site": "north"}).anomalies


def test_replay_scores_every_reading() -> None:
    scores: list[float] = []
    detector().process("d", [("temperature", float(i), 50.0) for i in range(7)], scores=scores)
    assert len(scores) == 7 and all(0.0 <= s <= 1.0 for s in scores)


def test_a_sensor_that_reports_irregularly_is_not_missing_at_every_pause() -> None:
    clock = Clock()
    d = detector(RULES.replace("model: off", "model: off\n  missing: {after: 3x}"), clock)
    rng = random.Random(9)
    opened = 0
    for _ in range(400):  # "door" reports on events: pauses of 1 to 60 batches
        clock.now += 5.0
        rows = [("temperature", clock.now, 50.0)]
        if rng.random() < 0.2:
            rows.append(("door", clock.now, 1.0))
        d.process("gate", rows)
        opened += len(d.sweep())
    assert opened <= 2  # a few long pauses early on, before its rhythm is known
    series = d.devices["gate"].series["door"]
    assert series.arrivals.spread > 3.0
    clock.now += series.arrivals.cadence * series.arrivals.spread * 2 + 5
    d.process("gate", [("temperature", clock.now, 50.0)])
    assert [c.sensor for _, c in d.sweep()] == ["door"]  # a pause beyond its own rhythm


def test_a_resent_normal_batch_is_answered_from_a_compact_record() -> None:
    d = detector()
    first = d.process("d", [("temperature", 1.0, 50.0)], seq=9)
    assert d.devices["d"].results[9] == first.max_score  # no outcome object kept
    again = d.process("d", [("temperature", 1.0, 50.0)], seq=9)
    assert again.duplicate and again.anomalies == [] and again.changes == []
    assert d.devices["d"].series["temperature"].model.n == 1
