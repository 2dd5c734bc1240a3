"""Alert events and their analysis jobs, from the detector's episode changes.

Ingest turns the episode changes of every batch into `alert` events and jobs; the
detector does the same for the offline / missing-data alerts its sweep finds. Both
build them here, so an alert looks the same whoever raised it. An episode that opens
or escalates becomes one analysis job per severity it reaches (`alert_job_id`), so a
resend or a second sweep can never queue the same analysis twice. Plain functions.
"""

from __future__ import annotations

import json
from typing import Any

from vigil.v1 import detector_pb2

from services.common.events import SEVERITY_NAMES, Event, rfc3339, stream_fields
from services.common.queue import alert_job_id
from services.common.timeconv import to_seconds

CHANGE_STATE = {
    detector_pb2.EpisodeChange.OPENED: "opened",
    detector_pb2.EpisodeChange.ESCALATED: "escalated",
    detector_pb2.EpisodeChange.RESOLVED: "resolved",
}
Job = tuple[str, int, dict[str, Any]]  # id, priority, body


def alert_event(change: detector_pb2.EpisodeChange, labels: dict[str, str]) -> Event:
    verdict = change.verdict
    return {
        "kind": "alert",
        "state": CHANGE_STATE.get(change.kind, "opened"),
        "alert_id": change.episode_id,
        "episode_id": change.episode_id,
        "device_id": change.device_id,
        "labels": labels,
        "sensor": change.sensor,
        "severity": SEVERITY_NAMES.get(change.severity),
        "value": verdict.value,
        "score": verdict.score,
        "reasons": list(verdict.reasons),
        "time": rfc3339(to_seconds(verdict.time)),
        "started": rfc3339(to_seconds(change.started)),
    }


def plan(
    labels: dict[str, str], changes: list[detector_pb2.EpisodeChange]
) -> tuple[list[Event], list[Job]]:
    """The events and jobs that episode changes cause."""
    events: list[Event] = []
    jobs: list[Job] = []
    for change in changes:
        event = alert_event(change, labels)
        events.append(event)
        if change.kind in (detector_pb2.EpisodeChange.OPENED, detector_pb2.EpisodeChange.ESCALATED):
            body = {
                "kind": "alert",
                **{k: v for k, v in event.items() if k not in ("kind", "state")},
            }
            jobs.append((alert_job_id(change.episode_id, change.severity), change.severity, body))
    return events, jobs


def script_payload(events: list[Event], jobs: list[Job]) -> dict[str, Any]:
    """The `events` and `jobs` part of a commit script's JSON argument."""
    fields = [stream_fields(e) for e in events]
    return {
        "events": [[f["kind"], f["device"], f["sev"], f["data"]] for f in fields],
        "jobs": [[job_id, priority, json.dumps(body)] for job_id, priority, body in jobs],
    }
