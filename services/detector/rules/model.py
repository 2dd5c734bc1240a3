"""The rules file: parse and validate it into plain dataclasses.

Every problem is a `ConfigError` that names where in the file it is
(`sensors.temperature.thresholds[1].severity: ...`), and a rejected file changes
nothing: the caller keeps the rules it had.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from services.common.errors import ConfigError
from services.common.events import SEVERITY_BY_NAME


@dataclass(frozen=True, slots=True)
class Threshold:
    severity: int
    above: float | None = None
    below: float | None = None

    def matches(self, value: float) -> bool:
        return (self.above is not None and value > self.above) or (
            self.below is not None and value < self.below
        )

    def reason(self, value: float) -> str:
        name = {1: "info", 2: "warning", 3: "critical"}[self.severity]
        if self.above is not None and value > self.above:
            return f"value {value:g} above {name} threshold {self.above:g}"
        return f"value {value:g} below {name} threshold {self.below:g}"


@dataclass(frozen=True, slots=True)
class SensorRules:
    thresholds: tuple[Threshold, ...] = ()


@dataclass(frozen=True, slots=True)
class Rules:
    sensors: dict[str, SensorRules] = field(default_factory=dict)
    quiet_readings: int = 5

    def for_sensor(self, sensor: str) -> SensorRules | None:
        return self.sensors.get(sensor)


def _number(where: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"{where}: must be a finite number, got {value!r}")
    return float(value)


def _mapping(where: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: must be a mapping, got {type(value).__name__}")
    return value


def _threshold(where: str, raw: Any) -> Threshold:
    item = _mapping(where, raw)
    unknown = set(item) - {"above", "below", "severity"}
    if unknown:
        raise ConfigError(f"{where}: unknown key {sorted(unknown)[0]!r}")
    severity = item.get("severity")
    if severity not in SEVERITY_BY_NAME:
        raise ConfigError(f"{where}.severity: must be one of info, warning, critical")
    above = _number(f"{where}.above", item["above"]) if "above" in item else None
    below = _number(f"{where}.below", item["below"]) if "below" in item else None
    if above is None and below is None:
        raise ConfigError(f"{where}: needs 'above' or 'below'")
    return Threshold(SEVERITY_BY_NAME[severity], above, below)


def parse(data: Any, source: str = "rules") -> Rules:
    """Rules from already-loaded YAML data."""
    root = _mapping(source, {} if data is None else data)
    unknown = set(root) - {"sensors", "episodes"}
    if unknown:
        raise ConfigError(f"{source}: unknown top-level key {sorted(unknown)[0]!r}")
    sensors: dict[str, SensorRules] = {}
    for name, raw in _mapping(f"{source}: sensors", root.get("sensors") or {}).items():
        where = f"sensors.{name}"
        spec = _mapping(where, raw or {})
        thresholds = spec.get("thresholds") or []
        if not isinstance(thresholds, list):
            raise ConfigError(f"{where}.thresholds: must be a list")
        sensors[str(name)] = SensorRules(
            tuple(_threshold(f"{where}.thresholds[{i}]", t) for i, t in enumerate(thresholds))
        )
    episodes = _mapping("episodes", root.get("episodes") or {})
    quiet = episodes.get("quiet_readings", 5)
    if isinstance(quiet, bool) or not isinstance(quiet, int) or not 1 <= quiet <= 10_000:
        raise ConfigError("episodes.quiet_readings: must be an integer from 1 to 10000")
    return Rules(sensors=sensors, quiet_readings=quiet)


def load_text(text: str, source: str = "rules") -> Rules:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        raise ConfigError(f"{where}: invalid YAML: {getattr(exc, 'problem', exc)}") from None
    return parse(data, source)


def load(path: Path | None) -> Rules:
    """The rules in `path`, or the default file shipped with Vigil when None."""
    if path is None:
        return load_text(default_text(), "default rules")
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"VIGIL_RULES={path}: cannot read: {exc.strerror}") from None
    return load_text(text, str(path))


def default_text() -> str:
    return resources.files("services.detector.rules").joinpath("default.yaml").read_text()
