from __future__ import annotations

from pathlib import Path

import pytest

from services.common.errors import ConfigError
from services.detector.rules.model import load, load_text


def test_issue_example_parses() -> None:
    rules = load_text(
        "sensors: {temperature: {thresholds: [{above: 95, severity: critical},"
        " {above: 80, severity: warning}]}}"
    )
    spec = rules.for_sensor("temperature")
    assert spec is not None and [t.severity for t in spec.thresholds] == [3, 2]


def test_default_rules_cover_the_simulator_sensors() -> None:
    from services.simulator.fleet import SENSORS

    rules = load(None)
    assert set(SENSORS) <= set(rules.sensors)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "sensors: {t: {thresholds: [{above: 1, severity: fatal}]}}",
            "sensors.t.thresholds[0].severity: must be one of info, warning, critical",
        ),
        ("sensors: {t: {thresholds: [{severity: info}]}}", "sensors.t.thresholds[0]: needs"),
        (
            "sensors: {t: {thresholds: [{above: .nan, severity: info}]}}",
            "sensors.t.thresholds[0].above: must be a finite number",
        ),
        ("sensors: {t: {thresholds: [{abve: 1, severity: info}]}}", "unknown key 'abve'"),
        ("sensors:\n  t: [unclosed\n", "rules:3: invalid YAML"),
        ("snesors: {}", "unknown top-level key 'snesors'"),
    ],
)
def test_bad_rules_are_rejected_with_where(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as failure:
        load_text(text)
    assert message in failure.value.message


def test_unreadable_file_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"VIGIL_RULES=.*cannot read"):
        load(tmp_path / "missing.yaml")
