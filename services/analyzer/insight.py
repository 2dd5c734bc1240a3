"""What an analysis produced (an `Outcome`) and the `insight` event that carries it.

Insight events follow the shared contract: alert_id, episode_id, job_id, device_id,
sensor, severity, time, diagnosis, likely_causes, actions, urgency, confidence, source
("model", "cache" or "builtin"), cost and, when the built-in analyzer stood in for the
model, a `note` saying why. Plain data; no I/O.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from services.analyzer import builtin
from services.common.events import Event, rfc3339


@dataclass(frozen=True, slots=True)
class Outcome:
    insight: dict[str, Any]
    source: str  # model | cache | builtin
    cost: float = 0.0
    note: str | None = None
    #: Identifies the answer: two outcomes with one mark are the same insight, so the
    #: second is not published again.
    mark: str = "builtin"


def builtin_outcome(alert: Mapping[str, Any], note: str | None = None) -> Outcome:
    mark = "builtin" if note is None else f"builtin:{note}"
    return Outcome(builtin.analyze(dict(alert)), "builtin", 0.0, note, mark)


def insight_event(job_id: str, alert: Mapping[str, Any], outcome: Outcome) -> Event:
    event: Event = {
        "kind": "insight",
        "job_id": job_id,
        "alert_id": alert.get("alert_id") or alert.get("episode_id"),
        "episode_id": alert.get("episode_id"),
        "device_id": alert.get("device_id"),
        "sensor": alert.get("sensor"),
        "severity": alert.get("severity"),
        "time": rfc3339(time.time()),
        **outcome.insight,
        "source": outcome.source,
        "cost": round(outcome.cost, 9),
    }
    if outcome.note:
        event["note"] = outcome.note
    return event
