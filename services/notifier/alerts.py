"""Current alerts (episodes), derived from `vigil:events` alone.

The book is rebuilt on start by reading the stream and kept current by the hub, which
applies every entry before fanning it out; so any replica answers GET /api/alerts the
same way and a restart loses nothing the stream still holds. `alert` events open,
escalate and resolve an alert; a later `insight` for it supersedes an earlier one; an
`ack` marks it acknowledged (and maybe a false alarm). Memory is bounded: resolved
alerts beyond `resolved_kept` are forgotten oldest first. Must never do I/O.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from services.common.events import SEVERITY_BY_NAME, Event, severity_name, stream_id_key
from services.notifier.entry import Entry
from services.notifier.filters import Filter

INSIGHT_FIELDS = (
    "diagnosis",
    "likely_causes",
    "actions",
    "urgency",
    "confidence",
    "source",
    "cost",
    "note",
    "time",
    "job_id",
)
ACK_FIELDS = ("by", "note", "false_alarm", "time")


@dataclass(slots=True)
class Alert:
    alert_id: str
    device_id: str
    sensor: str
    severity: int = 0
    state: str = "opened"
    labels: dict[str, Any] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)
    reasons: list[Any] = field(default_factory=list)
    last_id: str = ""
    insight: dict[str, Any] | None = None
    ack: dict[str, Any] | None = None

    @property
    def open(self) -> bool:
        return self.state != "resolved"

    def as_json(self) -> dict[str, Any]:
        return {
            "alert_id": self.alert_id,
            "device_id": self.device_id,
            "sensor": self.sensor,
            "severity": severity_name(self.severity),
            "state": self.state,
            "open": self.open,
            "labels": self.labels,
            "reasons": self.reasons,
            **self.facts,
            "last_id": self.last_id,
            "insight": self.insight,
            "ack": self.ack,
        }


def _pick(event: Event, names: Iterable[str]) -> dict[str, Any]:
    return {name: event[name] for name in names if name in event}


class AlertBook:
    def __init__(self, resolved_kept: int = 1000, open_cap: int = 100_000) -> None:
        self.resolved_kept = resolved_kept
        self.open_cap = open_cap
        # Both ordered by last change, oldest first.
        self.open_alerts: OrderedDict[str, Alert] = OrderedDict()
        self.resolved: OrderedDict[str, Alert] = OrderedDict()

    def get(self, alert_id: str) -> Alert | None:
        return self.open_alerts.get(alert_id) or self.resolved.get(alert_id)

    def apply(self, entry: Entry, event: Event) -> None:
        if entry.kind == "alert":
            self._alert(entry, event)
            return
        target = self.get(str(event.get("alert_id") or ""))
        if target is None:
            return  # explains or acks an alert the stream no longer holds
        if entry.kind == "insight":
            target.insight = _pick(event, INSIGHT_FIELDS)
        elif entry.kind == "ack":
            target.ack = _pick(event, ACK_FIELDS)

    def _alert(self, entry: Entry, event: Event) -> None:
        alert_id = str(event.get("alert_id") or event.get("episode_id") or "")
        if not alert_id:
            return
        alert = self.open_alerts.pop(alert_id, None) or self.resolved.pop(alert_id, None)
        if alert is None:
            alert = Alert(alert_id, entry.device, str(event.get("sensor") or ""))
        alert.state = str(event.get("state") or "opened")
        # An episode's severity is the worst it reached; a resolve carries that peak too.
        alert.severity = max(alert.severity, SEVERITY_BY_NAME.get(str(event.get("severity")), 0))
        labels = event.get("labels")
        if isinstance(labels, dict):
            alert.labels = labels
        reasons = event.get("reasons")
        if isinstance(reasons, list) and reasons:
            # A resolve reports the quiet reading: keep what the alert was raised for.
            alert.reasons = reasons
        alert.facts.update(_pick(event, ("episode_id", "value", "score", "time", "started")))
        alert.last_id = entry.id
        if alert.open:
            self.open_alerts[alert_id] = alert
            while len(self.open_alerts) > self.open_cap:
                self.open_alerts.popitem(last=False)
        else:
            self.resolved[alert_id] = alert
            while len(self.resolved) > self.resolved_kept:
                self.resolved.popitem(last=False)

    @property
    def open_count(self) -> int:
        return len(self.open_alerts)

    def select(
        self,
        filt: Filter,
        labels_of: Mapping[str, Mapping[str, str]],
        state: str = "all",
        limit: int = 1000,
    ) -> list[dict[str, Any]]:
        """Alerts matching `filt` (kinds aside), newest change first."""
        pools: list[OrderedDict[str, Alert]] = []
        if state in ("open", "all"):
            pools.append(self.open_alerts)
        if state in ("resolved", "all"):
            pools.append(self.resolved)
        found = [
            alert
            for pool in pools
            for alert in reversed(pool.values())
            if filt.accepts("alert", alert.device_id, alert.severity, _labels(alert, labels_of))
        ]
        found.sort(key=lambda a: stream_id_key(a.last_id), reverse=True)
        return [alert.as_json() for alert in found[:limit]]

    def open_by_device(self) -> dict[str, tuple[int, int]]:
        """device -> (open alerts, worst open severity)."""
        counts: dict[str, tuple[int, int]] = {}
        for alert in self.open_alerts.values():
            n, worst = counts.get(alert.device_id, (0, 0))
            counts[alert.device_id] = (n + 1, max(worst, alert.severity))
        return counts


def _labels(alert: Alert, labels_of: Mapping[str, Mapping[str, str]]) -> Mapping[str, str]:
    """The device's current labels, else those its alert carried."""
    return labels_of.get(alert.device_id) or alert.labels
