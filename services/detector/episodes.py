"""Episodes: one incident of one series (or of a device) is one alert with updates.

An episode opens on the first anomalous reading, escalates when a reading is more
severe than any before in it, and resolves after `quiet_readings` consecutive quiet
readings spanning at least `quiet_seconds` since its last anomalous one. A reading is
quiet when no rule fires and its model score is below `hold`, so a series hovering
just under the alert level keeps its episode open instead of flapping (hysteresis).
Plain state and functions; no I/O.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

OPENED, ESCALATED, RESOLVED = "opened", "escalated", "resolved"


def new_episode_id() -> str:
    return "ep-" + secrets.token_hex(8)


@dataclass(slots=True)
class Verdict:
    sensor: str
    time: float
    value: float
    score: float
    severity: int
    reasons: list[str]
    episode_id: str = ""


@dataclass(slots=True)
class Change:
    kind: str
    episode_id: str
    sensor: str
    severity: int
    verdict: Verdict
    started: float


@dataclass(slots=True)
class Episode:
    """The open episode of a series or device; `id` is empty when there is none."""

    id: str = ""
    peak: int = 0
    started: float = 0.0
    quiet: int = 0
    last_anomaly: float = 0.0
    reasons: list[str] = field(default_factory=list)

    def anomalous(self, verdict: Verdict, new_id: Callable[[], str]) -> Change | None:
        """An anomalous verdict: open (naming it `new_id()`) or escalate."""
        self.quiet = 0
        self.last_anomaly = verdict.time
        if not self.id:
            self.id, self.peak, self.started = new_id(), verdict.severity, verdict.time
            verdict.episode_id = self.id
            return Change(OPENED, self.id, verdict.sensor, self.peak, verdict, self.started)
        verdict.episode_id = self.id
        if verdict.severity > self.peak:
            self.peak = verdict.severity
            return Change(ESCALATED, self.id, verdict.sensor, self.peak, verdict, self.started)
        return None

    def quiet_reading(
        self, verdict: Verdict, quiet_readings: int, quiet_seconds: float
    ) -> Change | None:
        """A quiet verdict of an open episode: resolve once quiet long enough."""
        self.quiet += 1
        if self.quiet < quiet_readings or verdict.time - self.last_anomaly < quiet_seconds:
            return None
        return self.resolve(verdict)

    def resolve(self, verdict: Verdict) -> Change:
        change = Change(RESOLVED, self.id, verdict.sensor, self.peak, verdict, self.started)
        self.id, self.peak, self.quiet = "", 0, 0
        return change
