"""The rules file: read and validate it into `spec` dataclasses.

Every problem is one `ConfigError` naming the file, the line and the place:
`rules.yaml:12: sensors.temperature.thresholds[1].severity: must be one of info,
warning, critical`. A rejected file changes nothing: the caller keeps the rules it had.
The format is documented in the README and in the shipped `default.yaml`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from services.common.errors import ConfigError
from services.detector.rules.marks import line_of, safe_load
from services.detector.rules.spec import (
    Episodes,
    Layer,
    Match,
    ModelLevels,
    Override,
    RateOfChange,
    Rules,
    Silence,
    Stuck,
    Threshold,
)

SEVERITIES = {"info": 1, "warning": 2, "critical": 3}
DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|min|m|h|d)\s*")
UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86_400.0}
MULTIPLE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*x\s*")
LAYER_KEYS = {"thresholds", "rate_of_change", "stuck", "missing", "model"}


@dataclass(frozen=True, slots=True)
class At:
    """A place in the file: its path for humans and its line."""

    source: str
    path: str
    line: int

    def child(self, container: Any, key: str | int) -> At:
        sep = f"[{key}]" if isinstance(key, int) else (f".{key}" if self.path else str(key))
        line = line_of(container, key) or self.line
        return At(self.source, self.path + sep, line)

    def error(self, problem: str) -> ConfigError:
        where = f"{self.source}:{self.line}" if self.line else self.source
        return ConfigError(
            f"{where}: {self.path}: {problem}" if self.path else f"{where}: {problem}"
        )


def _is_off(value: Any) -> bool:
    return value is False or (isinstance(value, str) and value.strip().lower() == "off")


def _mapping(at: At, value: Any, keys: set[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise at.error(f"must be a mapping, got {type(value).__name__}")
    for key in value:
        if key not in keys:
            raise at.child(value, key).error(
                f"unknown key {key!r} (expected one of {', '.join(sorted(keys))})"
            )
    return value


def _number(at: At, value: Any, lo: float | None = None, hi: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise at.error(f"must be a finite number, got {value!r}")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        bounds = f"from {lo:g}" if hi is None else f"from {lo:g} to {hi:g}"
        raise at.error(f"must be a number {bounds}, got {value!r}")
    return float(value)


def _severity(at: At, value: Any) -> int:
    if not isinstance(value, str) or value not in SEVERITIES:  # a list is not even hashable
        raise at.error("must be one of info, warning, critical")
    return SEVERITIES[value]


def _duration(at: At, value: Any) -> float:
    """Seconds: a number, or text like 30s, 5m, 2h, 1d."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _number(at, value, lo=0.0)
    match = DURATION.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise at.error(f"must be a duration like 30s, 5m, 2h or 1d, got {value!r}")
    return float(match.group(1)) * UNIT_S[match.group(2)]


def _silence(at: At, raw: Any) -> Silence:
    item = _mapping(at, raw, {"after", "severity"})
    severity = _severity(at.child(item, "severity"), item.get("severity", "warning"))
    after_at = at.child(item, "after")
    after = item.get("after", "5x")
    multiple = MULTIPLE.fullmatch(after) if isinstance(after, str) else None
    if multiple is not None:
        cadences = float(multiple.group(1))
        if cadences < 1.5:
            raise after_at.error("must be at least 1.5x the learned cadence")
        return Silence(severity, cadences=cadences)
    seconds = _duration(after_at, after)
    if seconds <= 0:
        raise after_at.error("must be more than 0 s")
    return Silence(severity, seconds=seconds)


def _threshold(at: At, raw: Any) -> Threshold:
    item = _mapping(at, raw, {"above", "below", "severity"})
    severity = _severity(at.child(item, "severity"), item.get("severity"))
    above = _number(at.child(item, "above"), item["above"]) if "above" in item else None
    below = _number(at.child(item, "below"), item["below"]) if "below" in item else None
    if above is None and below is None:
        raise at.error("needs 'above' or 'below'")
    return Threshold(severity, above, below)


def _thresholds(at: At, raw: Any) -> tuple[Threshold, ...]:
    if not isinstance(raw, list):
        raise at.error("must be a list")
    return tuple(_threshold(at.child(raw, i), item) for i, item in enumerate(raw))


def _rate(at: At, raw: Any) -> RateOfChange:
    item = _mapping(at, raw, {"max", "per", "severity"})
    if "max" not in item:
        raise at.error("needs 'max' (the largest change allowed per 'per')")
    limit = _number(at.child(item, "max"), item["max"], lo=0.0)
    per = _duration(at.child(item, "per"), item.get("per", 1))
    if per <= 0:
        raise at.child(item, "per").error("must be more than 0 s")
    severity = _severity(at.child(item, "severity"), item.get("severity", "warning"))
    return RateOfChange(limit, per, severity)


def _stuck(at: At, raw: Any) -> Stuck:
    item = _mapping(at, raw, {"readings", "for", "tolerance", "severity"})
    if ("readings" in item) == ("for" in item):
        raise at.error("needs exactly one of 'readings' or 'for'")
    readings = None
    seconds = None
    if "readings" in item:
        value = item["readings"]
        if isinstance(value, bool) or not isinstance(value, int) or not 2 <= value <= 1_000_000:
            raise at.child(item, "readings").error("must be an integer from 2 to 1000000")
        readings = value
    else:
        seconds = _duration(at.child(item, "for"), item["for"])
    tolerance = _number(at.child(item, "tolerance"), item.get("tolerance", 0.0), lo=0.0)
    severity = _severity(at.child(item, "severity"), item.get("severity", "warning"))
    return Stuck(severity, readings, seconds, tolerance)


def _model(at: At, raw: Any) -> ModelLevels:
    item = _mapping(at, raw, {"info", "warning", "critical"})
    defaults = ModelLevels()
    levels: dict[str, float | None] = {}
    for name in ("info", "warning", "critical"):
        value = item.get(name, getattr(defaults, name))
        if value is None or _is_off(value):
            levels[name] = None
        else:
            levels[name] = _number(at.child(item, name), value, lo=0.01, hi=1.0)
    order = [v for v in levels.values() if v is not None]
    if order != sorted(order):
        raise at.error("levels must rise from info to warning to critical")
    return ModelLevels(levels["info"], levels["warning"], levels["critical"])


PARSERS = {
    "thresholds": _thresholds,
    "rate_of_change": _rate,
    "stuck": _stuck,
    "missing": _silence,
    "model": _model,
}


def _layer(at: At, raw: Any, base: Layer | None = None) -> Layer:
    item = _mapping(at, {} if raw is None else raw, LAYER_KEYS)
    values: dict[str, Any] = {}
    cleared: set[str] = set()
    for kind, value in item.items():
        if _is_off(value):
            cleared.add(kind)
        else:
            values[kind] = PARSERS[kind](at.child(item, kind), value)
    if base is not None:
        values = {k: getattr(base, k) for k in LAYER_KEYS if getattr(base, k) is not None} | values
    return Layer(**values, cleared=frozenset(cleared))


def _sensors(at: At, raw: Any) -> dict[str, Layer]:
    # Any key is allowed; a non-mapping (`sensors: 1`) is refused by _mapping, not set().
    item = _mapping(at, {} if raw is None else raw, set(raw) if isinstance(raw, dict) else set())
    sensors: dict[str, Layer] = {}
    for name, spec in item.items():
        if not isinstance(name, str):
            raise at.child(item, name).error("sensor names must be text")
        sensors[name] = _layer(at.child(item, name), spec)
    return sensors


def _offline(at: At, raw: Any) -> tuple[Silence | None, bool]:
    """(rule, cleared) of a `devices` block."""
    item = _mapping(at, {} if raw is None else raw, {"offline"})
    if "offline" not in item:
        return None, False
    if _is_off(item["offline"]):
        return None, True
    return _silence(at.child(item, "offline"), item["offline"]), False


def _override(at: At, raw: Any) -> Override:
    item = _mapping(at, raw, {"match", "defaults", "sensors", "devices"})
    match_at = at.child(item, "match")
    if "match" not in item:
        raise at.error("needs 'match' (device glob and/or labels)")
    match = _mapping(match_at, item["match"], {"device", "labels"})
    device = match.get("device")
    if device is not None and not isinstance(device, str):
        raise match_at.child(match, "device").error("must be a glob like 'press-*'")
    labels_at = match_at.child(match, "labels")
    raw_labels = match.get("labels") or {}
    labels = _mapping(
        labels_at, raw_labels, set(raw_labels) if isinstance(raw_labels, dict) else set()
    )
    pairs = []
    for key, pattern in labels.items():
        if not isinstance(pattern, str | int | float) or isinstance(pattern, bool):
            raise labels_at.child(labels, key).error("must be a value or a glob")
        pairs.append((str(key), str(pattern)))
    if device is None and not pairs:
        raise match_at.error("needs 'device' or 'labels'")
    offline, cleared = _offline(at.child(item, "devices"), item.get("devices"))
    return Override(
        Match(device, tuple(pairs)),
        _layer(at.child(item, "defaults"), item.get("defaults")),
        _sensors(at.child(item, "sensors"), item.get("sensors")),
        offline,
        cleared,
    )


def _episodes(at: At, raw: Any) -> Episodes:
    item = _mapping(at, {} if raw is None else raw, {"quiet_readings", "quiet_seconds", "hold"})
    quiet = item.get("quiet_readings", 5)
    if isinstance(quiet, bool) or not isinstance(quiet, int) or not 1 <= quiet <= 10_000:
        raise at.child(item, "quiet_readings").error("must be an integer from 1 to 10000")
    seconds = _duration(at.child(item, "quiet_seconds"), item.get("quiet_seconds", 0))
    hold = _number(at.child(item, "hold"), item.get("hold", 0.5), lo=0.01, hi=1.0)
    return Episodes(quiet, seconds, hold)


def parse(data: Any, source: str = "rules") -> Rules:
    """Rules from loaded YAML data (`marks.safe_load` output gives line numbers)."""
    root_at = At(source, "", 0)
    root = _mapping(
        root_at,
        {} if data is None else data,
        {"defaults", "sensors", "overrides", "episodes", "devices"},
    )
    overrides_raw = root.get("overrides") or []
    overrides_at = root_at.child(root, "overrides")
    if not isinstance(overrides_raw, list):
        raise overrides_at.error("must be a list")
    offline, cleared = _offline(root_at.child(root, "devices"), root.get("devices"))
    return Rules(
        defaults=_layer(
            root_at.child(root, "defaults"), root.get("defaults"), Layer(model=ModelLevels())
        ),
        sensors=_sensors(root_at.child(root, "sensors"), root.get("sensors")),
        overrides=tuple(
            _override(overrides_at.child(overrides_raw, i), item)
            for i, item in enumerate(overrides_raw)
        ),
        episodes=_episodes(root_at.child(root, "episodes"), root.get("episodes")),
        offline=None if cleared else (offline or Rules().offline),
    )


def load_text(text: str, source: str = "rules") -> Rules:
    try:
        data = safe_load(text)
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
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise ConfigError(f"{path}: cannot read: {reason}") from None
    return load_text(text, str(path))


def default_text() -> str:
    return resources.files("services.detector.rules").joinpath("default.yaml").read_text()
