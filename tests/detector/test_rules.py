"""The rules file: what it means, how layers combine, and errors that name the line."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.common.errors import ConfigError
from services.detector.rules.parse import load, load_text
from services.detector.rules.spec import MODEL_OFF, ModelLevels, Silence

FULL = """\
episodes: {quiet_readings: 3, quiet_seconds: 30s, hold: 0.4}
defaults:
  model: {info: 0.75}
  missing: {after: 4x, severity: info}
devices:
  offline: {after: 2m, severity: critical}
sensors:
  temperature:
    thresholds:
      - {above: 95, severity: critical}
      - {below: -20, severity: warning}
    rate_of_change: {max: 5, per: 1m}
    stuck: {for: 10m, tolerance: 0.01, severity: info}
  humidity:
    model: off
overrides:
  - match: {device: "press-*", labels: {site: "plant-*"}}
    sensors:
      temperature:
        thresholds: [{above: 105, severity: critical}]
        stuck: off
    devices:
      offline: off
  - match: {labels: {tier: lab}}
    defaults:
      model: {info: 0.9, warning: off}
"""


def test_every_rule_kind_parses() -> None:
    rules = load_text(FULL)
    assert (rules.episodes.quiet_readings, rules.episodes.quiet_seconds) == (3, 30.0)
    assert rules.episodes.hold == 0.4
    assert rules.offline == Silence(3, seconds=120.0)
    spec = rules.resolve("mill-1", {}, "temperature")
    assert [(t.above, t.below, t.severity) for t in spec.thresholds] == [
        (95.0, None, 3),
        (None, -20.0, 2),
    ]
    assert spec.rate_of_change is not None
    assert (spec.rate_of_change.limit, spec.rate_of_change.per_s) == (5.0, 60.0)
    assert spec.rate_of_change.severity == 2  # warning unless told
    assert spec.stuck is not None and (spec.stuck.seconds, spec.stuck.tolerance) == (600.0, 0.01)
    assert spec.missing == Silence(1, cadences=4.0)
    # A model mapping sets the levels it names; the others keep their defaults.
    assert spec.model == ModelLevels(info=0.75, warning=0.9, critical=None)


def test_layers_sensor_then_overrides_in_order() -> None:
    rules = load_text(FULL)
    assert rules.resolve("mill-1", {}, "humidity").model == MODEL_OFF
    press = rules.resolve("press-7", {"site": "plant-north"}, "temperature")
    assert [t.above for t in press.thresholds] == [105.0]
    assert press.stuck is None  # `off` in the override
    assert press.rate_of_change is not None  # untouched kinds stay
    assert rules.resolve("press-7", {"site": "dc-east"}, "temperature").stuck is not None
    lab = rules.resolve("press-7", {"site": "plant-x", "tier": "lab"}, "pressure")
    assert lab.model == ModelLevels(info=0.9, warning=None, critical=None)
    assert rules.offline_for("press-7", {"site": "plant-north"}) is None
    assert rules.offline_for("mill-1", {}) == Silence(3, seconds=120.0)


def test_default_rules_cover_the_simulator_sensors() -> None:
    from services.simulator.fleet import SENSORS

    rules = load(None)
    assert set(SENSORS) <= set(rules.sensors)
    assert rules.resolve("sim-1", {}, "anything").model.info == 0.7


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "sensors:\n  t:\n    thresholds:\n      - {above: 1, severity: fatal}\n",
            "rules:4: sensors.t.thresholds[0].severity: must be one of info, warning, critical",
        ),
        (
            "sensors:\n  t:\n    thresholds:\n      - {severity: info}\n",
            "rules:4: sensors.t.thresholds[0]: needs 'above' or 'below'",
        ),
        (
            "sensors:\n  t: {thresholds: [{above: .nan, severity: info}]}\n",
            "rules:2: sensors.t.thresholds[0].above: must be a finite number",
        ),
        (
            "sensors:\n\n  t:\n    thresholds: [{abve: 1, severity: info}]\n",
            "rules:4: sensors.t.thresholds[0].abve: unknown key 'abve'",
        ),
        ("sensors:\n  t: [unclosed\n", "rules:3: invalid YAML"),
        ("snesors: {}\n", "rules:1: snesors: unknown key 'snesors'"),
        (
            "sensors:\n  t:\n    stuck: {readings: 1}\n",
            "rules:3: sensors.t.stuck.readings: must be an integer from 2 to 1000000",
        ),
        (
            "sensors:\n  t:\n    stuck: {severity: info}\n",
            "rules:3: sensors.t.stuck: needs exactly one of 'readings' or 'for'",
        ),
        (
            "defaults:\n  missing: {after: soon}\n",
            "rules:2: defaults.missing.after: must be a duration like 30s",
        ),
        (
            "defaults:\n  missing: {after: 1x}\n",
            "rules:2: defaults.missing.after: must be at least 1.5x",
        ),
        (
            "sensors:\n  t:\n    rate_of_change: {per: 1m}\n",
            "rules:3: sensors.t.rate_of_change: needs 'max'",
        ),
        (
            "defaults:\n  model: {info: 0.9, warning: 0.8}\n",
            "rules:2: defaults.model: levels must rise from info to warning to critical",
        ),
        (
            "overrides:\n  - sensors: {}\n",
            "rules:2: overrides[0]: needs 'match'",
        ),
        (
            "overrides:\n  - match: {}\n",
            "rules:2: overrides[0].match: needs 'device' or 'labels'",
        ),
        (
            "episodes:\n  quiet_readings: 0\n",
            "rules:2: episodes.quiet_readings: must be an integer from 1 to 10000",
        ),
    ],
)
def test_bad_rules_are_rejected_naming_the_line(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as failure:
        load_text(text)
    assert failure.value.message.startswith(message), failure.value.message


def test_unreadable_file_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"missing\.yaml: cannot read"):
        load(tmp_path / "missing.yaml")


def test_file_errors_carry_the_file_name(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("sensors:\n  t:\n    thresholds: [{above: x, severity: info}]\n")
    with pytest.raises(ConfigError) as failure:
        load(path)
    assert failure.value.message.startswith(f"{path}:3: sensors.t.thresholds[0].above:")
