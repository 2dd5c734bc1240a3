"""Making a batch's consequences durable: alert events and analysis jobs, in one script.

The detector's episode changes become `alert` events on `vigil:events`; an episode that
opens or escalates becomes an analysis job (one per episode and severity). Everything of
one batch is applied by one Lua script together with the (device, seq) mark, so a resent
batch has no second effect and a crash never leaves half a batch.
"""

from __future__ import annotations

import json
from typing import Any

from redis.asyncio import Redis
from vigil.v1 import detector_pb2

from services.common import keys
from services.common.events import SEVERITY_NAMES, Event, rfc3339, stream_fields
from services.common.queue import alert_job_id
from services.common.scripts import Scripts
from services.common.timeconv import to_seconds

CHANGE_STATE = {
    detector_pb2.EpisodeChange.OPENED: "opened",
    detector_pb2.EpisodeChange.ESCALATED: "escalated",
    detector_pb2.EpisodeChange.RESOLVED: "resolved",
}
SEEN_CAP = 4096
SEEN_TTL_S = 7 * 86_400


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
    device_id: str, labels: dict[str, str], result: detector_pb2.BatchResult
) -> tuple[list[Event], list[tuple[str, int, dict[str, Any]]]]:
    """The events and jobs (id, priority, body) that one batch result causes."""
    events: list[Event] = []
    jobs: list[tuple[str, int, dict[str, Any]]] = []
    for change in result.episodes:
        event = alert_event(change, labels)
        events.append(event)
        if change.kind in (detector_pb2.EpisodeChange.OPENED, detector_pb2.EpisodeChange.ESCALATED):
            body = {
                "kind": "alert",
                **{k: v for k, v in event.items() if k not in ("kind", "state")},
            }
            jobs.append((alert_job_id(change.episode_id, change.severity), change.severity, body))
    return events, jobs


class Committer:
    def __init__(self, redis: Redis, scripts: Scripts, events_maxlen: int) -> None:
        self.redis = redis
        self.scripts = scripts
        self.events_maxlen = events_maxlen

    async def already_applied(self, device_id: str, seq: int) -> bool:
        return await self.redis.zscore(keys.seen(device_id), seq) is not None

    async def apply(
        self,
        device_id: str,
        seq: int,
        events: list[Event],
        jobs: list[tuple[str, int, dict[str, Any]]],
    ) -> bool:
        """Apply once; False when (device, seq) was applied before."""
        fields = [stream_fields(e) for e in events]
        payload = {
            "events": [[f["kind"], f["device"], f["sev"], f["data"]] for f in fields],
            "jobs": [[job_id, priority, json.dumps(body)] for job_id, priority, body in jobs],
        }
        applied = await self.scripts.ingest_commit(
            keys=[keys.seen(device_id), keys.EVENTS, keys.QUEUE, *(keys.job(j[0]) for j in jobs)],
            args=[
                seq,
                self.events_maxlen,
                SEEN_CAP,
                SEEN_TTL_S,
                json.dumps(payload),
                keys.QUEUE_NOTIFY,
            ],
        )
        return bool(applied)
