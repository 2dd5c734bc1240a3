"""An anomaly's pattern: what the cache key is made of, so similar incidents share a
diagnosis. A plain function of the alert; no I/O.

The pattern holds, and only holds:
- `sensor`: the sensor kind, its name lowercased without a trailing number
  (`Temperature_2` -> `temperature`);
- `severity`: info, warning or critical;
- `direction`: high, low, rising, falling or unknown, from the reasons;
- `kinds`: the kinds of reasons, sorted (threshold, baseline, rate, stuck, missing,
  other);
- `magnitude`: a bucket, not a value: the excess over the crossed threshold relative to
  it (below 2 %, 2-5 %, 5-10 %, 10-20 %, 20-50 %, 50-100 %, over 100 %), else the
  distance from the baseline in standard deviations (below 4, 4-6, 6-10, over 10), else
  the anomaly score in fifths;
- `labels`: the device's labels (all, or the keys in VIGIL_CACHE_LABEL_KEYS), sorted.
The device id, the exact value and the time are deliberately left out. The key is the
SHA-256 of the pattern as canonical JSON (with a version number, so a change of rules
never reads old entries).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

VERSION = 1
_NUMBER = r"(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)"
THRESHOLD = re.compile(rf"value {_NUMBER} (above|below) (?:[\w-]+ )?threshold {_NUMBER}")
SIGMA = re.compile(rf"{_NUMBER}\s*(?:\u03c3|sigma|std)\s*(above|below)", re.IGNORECASE)
KINDS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("threshold", re.compile(r"threshold", re.I)),
    ("baseline", re.compile(r"\u03c3|sigma|baseline|usual|normal range", re.I)),
    ("rate", re.compile(r"rate|rising|falling|per (?:second|minute)|jump|drop", re.I)),
    ("stuck", re.compile(r"stuck|flat", re.I)),
    ("missing", re.compile(r"missing|silent|offline|no data|no reading", re.I)),
)
RELATIVE_EDGES = (0.02, 0.05, 0.1, 0.2, 0.5, 1.0)
RELATIVE_NAMES = ("<2%", "2-5%", "5-10%", "10-20%", "20-50%", "50-100%", ">100%")
SIGMA_EDGES = (4.0, 6.0, 10.0)
SIGMA_NAMES = ("<4sd", "4-6sd", "6-10sd", ">10sd")
SEVERITY_LEVELS = {"info": 1, "warning": 2, "critical": 3}


@dataclass(frozen=True, slots=True)
class Pattern:
    sensor: str
    severity: str
    direction: str
    kinds: tuple[str, ...]
    magnitude: str
    labels: tuple[tuple[str, str], ...]

    @property
    def level(self) -> int:
        return SEVERITY_LEVELS.get(self.severity, 1)

    def digest(self) -> str:
        canonical = json.dumps(
            {"v": VERSION, **asdict(self)}, sort_keys=True, separators=(",", ":")
        )
        return hashlib.sha256(canonical.encode()).hexdigest()


def sensor_kind(name: str) -> str:
    kind = re.sub(r"[._-]*\d+$", "", name.strip().lower())
    return kind or name.strip().lower()


def _bucket(value: float, edges: Sequence[float], names: Sequence[str]) -> str:
    for edge, name in zip(edges, names, strict=False):
        if value < edge:
            return name
    return names[-1]


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


# Words of the detector's reasons (rate of change: "rose 12 in 1 s", "fell ..."), in order.
_DIRECTION_WORDS = (
    (" rose ", "rising"),
    (" rising ", "rising"),
    (" fell ", "falling"),
    (" falling ", "falling"),
    (" above ", "high"),
    (" below ", "low"),
)


def direction_of(reasons: Sequence[str]) -> str:
    """high, low, rising, falling or unknown: which way the reasons say the value went."""
    for reason in reasons:
        if match := THRESHOLD.search(reason):
            return "high" if match[2] == "above" else "low"
        if match := SIGMA.search(reason):
            return "high" if match[2].lower() == "above" else "low"
    text = f" {' '.join(reasons).lower()} "
    return next((meaning for word, meaning in _DIRECTION_WORDS if word in text), "unknown")


def _magnitude(reasons: Sequence[str], score: float | None) -> tuple[str, str]:
    """(direction, magnitude bucket) from the first reason that says how far."""
    for reason in reasons:
        if match := THRESHOLD.search(reason):
            value, side, threshold = float(match[1]), match[2], float(match[3])
            excess = abs(value - threshold) / max(abs(threshold), 1e-9)
            direction = "high" if side == "above" else "low"
            return direction, "threshold " + _bucket(excess, RELATIVE_EDGES, RELATIVE_NAMES)
    for reason in reasons:
        if match := SIGMA.search(reason):
            direction = "high" if match[2].lower() == "above" else "low"
            return direction, "baseline " + _bucket(abs(float(match[1])), SIGMA_EDGES, SIGMA_NAMES)
    direction = direction_of(reasons)
    fifth = min(4, int(max(0.0, score or 0.0) * 5))
    return direction, f"score {fifth / 5:.1f}-{(fifth + 1) / 5:.1f}"


def pattern_of(alert: Mapping[str, Any], label_keys: Sequence[str] = ()) -> Pattern:
    """The pattern of an alert event or alert job body."""
    raw_reasons = alert.get("reasons")
    reasons = (
        [str(r) for r in raw_reasons if r is not None] if isinstance(raw_reasons, list) else []
    )
    kinds = sorted({kind for reason in reasons for kind, rx in KINDS if rx.search(reason)})
    direction, magnitude = _magnitude(reasons, _number(alert.get("score")))
    raw_labels = alert.get("labels") or {}
    labels = raw_labels if isinstance(raw_labels, Mapping) else {}
    chosen = {str(k): str(v) for k, v in labels.items() if not label_keys or str(k) in label_keys}
    severity = str(alert.get("severity") or "info")
    return Pattern(
        sensor=sensor_kind(str(alert.get("sensor") or "")),
        severity=severity if severity in SEVERITY_LEVELS else "info",
        direction=direction,
        kinds=tuple(kinds) or ("other",),
        magnitude=magnitude,
        labels=tuple(sorted(chosen.items())),
    )
