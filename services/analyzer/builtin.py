"""The built-in analyzer: a deterministic diagnosis from the alert alone.

It answers when no model is configured, when the model fails, and as the quick first
insight; `analyze_history` does the same for a deep analysis from per-sensor statistics.
Same input, same output; no I/O. Device-supplied strings are copied as data into the
text, never interpreted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from services.analyzer.pattern import direction_of


@dataclass(frozen=True, slots=True)
class Playbook:
    what: str
    high_causes: tuple[str, ...]
    high_actions: tuple[str, ...]
    low_causes: tuple[str, ...] = ()
    low_actions: tuple[str, ...] = ()


PLAYBOOKS: dict[str, Playbook] = {
    "temperature": Playbook(
        "temperature",
        (
            "cooling failure (fan, pump or coolant)",
            "blocked airflow or dirty filters",
            "sustained overload",
            "failing sensor",
        ),
        (
            "check cooling fans and coolant flow",
            "reduce load until the temperature drops",
            "inspect air filters and vents",
        ),
        ("heater failure", "cold ambient or open enclosure", "failing sensor"),
        ("check heaters and enclosure", "verify against a reference thermometer"),
    ),
    "vibration": Playbook(
        "vibration",
        ("bearing wear", "imbalance or misalignment", "loose mounting"),
        (
            "schedule a bearing inspection",
            "check mounting bolts and alignment",
            "reduce speed if vibration keeps rising",
        ),
    ),
    "pressure": Playbook(
        "pressure",
        ("blocked outlet or closed valve", "pump surge", "failing regulator"),
        ("check valves downstream", "inspect the pressure regulator", "verify relief valve"),
        ("leak in the line", "pump failure", "open bypass"),
        ("inspect the line for leaks", "check the pump", "verify valve positions"),
    ),
    "power": Playbook(
        "power draw",
        ("mechanical binding increasing load", "short or insulation fault", "process overload"),
        (
            "check the driven equipment for binding",
            "inspect wiring and insulation",
            "compare with the production schedule",
        ),
    ),
}
GENERIC = Playbook(
    "reading",
    ("process change outside normal range", "equipment fault", "failing sensor"),
    (
        "inspect the equipment",
        "verify the sensor against a reference",
        "compare with recent maintenance or process changes",
    ),
)
CONFIDENCE = {1: 0.4, 2: 0.5, 3: 0.6}
URGENCIES = ("info", "warning", "critical")


HEADLINE = {
    "high": "Abnormally high",
    "low": "Abnormally low",
    "rising": "Rapidly rising",
    "falling": "Rapidly falling",
    "unknown": "Abnormal",
}


def analyze(alert: dict[str, Any]) -> dict[str, Any]:
    """Diagnosis, likely causes, actions, urgency and confidence for an alert job body."""
    sensor = str(alert.get("sensor", ""))
    severity = str(alert.get("severity") or "info")
    severity = severity if severity in URGENCIES else "info"
    level = URGENCIES.index(severity) + 1
    raw = alert.get("reasons")
    reasons = [str(r) for r in raw] if isinstance(raw, list) else []
    direction = direction_of(reasons)
    low = direction in ("low", "falling")
    book = PLAYBOOKS.get(sensor.lower(), GENERIC)
    causes = book.low_causes if low and book.low_causes else book.high_causes
    actions = book.low_actions if low and book.low_actions else book.high_actions
    detail = "; ".join(reasons) if reasons else f"value {alert.get('value')}"
    return {
        "diagnosis": f"{HEADLINE[direction]} {book.what} on sensor {sensor!r} "
        f"of device {str(alert.get('device_id', ''))!r}: {detail}.",
        "likely_causes": list(causes),
        "actions": list(actions),
        "urgency": severity,
        "confidence": CONFIDENCE[level] if book is not GENERIC else 0.3,
    }


def _movement(stats: dict[str, Any], window_s: float) -> str:
    """rising / falling / steady: the trend over the window against the spread."""
    change = float(stats["trend_per_minute"]) * window_s / 60
    spread = max(float(stats["stdev"]), 1e-9)
    if change > spread:
        return "rising"
    if change < -spread:
        return "falling"
    return "steady"


def analyze_history(
    device_id: str, summary: dict[str, dict[str, Any]], window_s: float, urgency: str
) -> dict[str, Any]:
    """A deterministic reading of a device's per-sensor statistics (see history.py)."""
    parts = []
    causes: list[str] = []
    actions: list[str] = []
    for sensor, stats in summary.items():
        movement = _movement(stats, window_s)
        parts.append(
            f"{sensor!r} {movement} (last {stats['last']}, mean {stats['mean']}, "
            f"range {stats['min']} to {stats['max']}, {stats['count']} readings)"
        )
        if movement != "steady":
            book = PLAYBOOKS.get(sensor.lower(), GENERIC)
            low = movement == "falling" and bool(book.low_causes)
            for cause in book.low_causes if low else book.high_causes:
                if cause not in causes:
                    causes.append(cause)
            for action in book.low_actions if low else book.high_actions:
                if action not in actions:
                    actions.append(action)
    minutes = max(1, round(window_s / 60))
    moving = sum(1 for s in summary.values() if _movement(s, window_s) != "steady")
    return {
        "diagnosis": f"Device {device_id!r} over the last {minutes} min: "
        + ("; ".join(parts) or "no readings")
        + (f". {moving} sensor(s) trending." if moving else ". All sensors steady."),
        "likely_causes": causes[:6] or ["no trend beyond normal variation"],
        "actions": actions[:6] or ["no action needed; keep watching"],
        "urgency": urgency if urgency in URGENCIES else "info",
        "confidence": 0.3,
    }
