"""The built-in analyzer: a deterministic diagnosis from the alert alone.

It answers when no model is configured, when the model fails, and as the quick first
insight. Same input, same output; no I/O. Device-supplied strings are copied as data
into the text, never interpreted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


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


def analyze(alert: dict[str, Any]) -> dict[str, Any]:
    """Diagnosis, likely causes, actions, urgency and confidence for an alert job body."""
    sensor = str(alert.get("sensor", ""))
    severity = str(alert.get("severity") or "info")
    level = {"info": 1, "warning": 2, "critical": 3}.get(severity, 1)
    reasons = [str(r) for r in alert.get("reasons", [])]
    low = any(" below " in r for r in reasons)
    book = PLAYBOOKS.get(sensor.lower(), GENERIC)
    causes = book.low_causes if low and book.low_causes else book.high_causes
    actions = book.low_actions if low and book.low_actions else book.high_actions
    direction = "low" if low else "high"
    detail = "; ".join(reasons) if reasons else f"value {alert.get('value')}"
    return {
        "diagnosis": f"Abnormally {direction} {book.what} on sensor {sensor!r} "
        f"of device {str(alert.get('device_id', ''))!r}: {detail}.",
        "likely_causes": list(causes),
        "actions": list(actions),
        "urgency": severity,
        "confidence": CONFIDENCE[level] if book is not GENERIC else 0.3,
    }
