"""Engine verdicts and episode changes as protobuf messages (the Detect contract).

Field for field, nothing decided here: no logic belongs in a conversion.
"""

from __future__ import annotations

from vigil.v1 import common_pb2, detector_pb2

from services.common.timeconv import from_seconds
from services.detector.episodes import ESCALATED, OPENED, Change, Verdict

CHANGE_KIND = {
    OPENED: detector_pb2.EpisodeChange.OPENED,
    ESCALATED: detector_pb2.EpisodeChange.ESCALATED,
}


def verdict_message(device_id: str, verdict: Verdict) -> common_pb2.Verdict:
    message = common_pb2.Verdict(
        device_id=device_id,
        sensor=verdict.sensor,
        value=verdict.value,
        score=verdict.score,
        severity=verdict.severity,  # type: ignore[arg-type]
        reasons=verdict.reasons,
        episode_id=verdict.episode_id,
    )
    from_seconds(verdict.time, message.time)
    return message


def change_message(device_id: str, change: Change) -> detector_pb2.EpisodeChange:
    return detector_pb2.EpisodeChange(
        kind=CHANGE_KIND.get(change.kind, detector_pb2.EpisodeChange.RESOLVED),
        episode_id=change.episode_id,
        device_id=device_id,
        sensor=change.sensor,
        severity=change.severity,  # type: ignore[arg-type]
        verdict=verdict_message(device_id, change.verdict),
        started=from_seconds(change.started),
    )
