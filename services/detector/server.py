"""The detector's gRPC edge: turn Detect requests into engine calls and back."""

from __future__ import annotations

from typing import Any, ClassVar

from grpc import aio
from redis.asyncio import Redis
from vigil.v1 import common_pb2, detector_pb2, detector_pb2_grpc

from services.common.events import SEVERITY_NAMES
from services.common.timeconv import from_seconds, to_seconds
from services.detector import metrics
from services.detector.engine import ESCALATED, OPENED, Detector, Verdict
from services.detector.rules.model import load
from services.detector.settings import DetectorSettings

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


class DetectorServicer(detector_pb2_grpc.DetectorServicer):
    def __init__(self, detector: Detector) -> None:
        self.detector = detector

    async def Detect(
        self, request: detector_pb2.DetectRequest, context: aio.ServicerContext[Any, Any]
    ) -> detector_pb2.DetectResponse:
        response = detector_pb2.DetectResponse()
        readings = 0
        for batch in request.batches:
            outcome = self.detector.process(
                batch.device_id,
                ((r.sensor, to_seconds(r.time), r.value) for r in batch.readings),
            )
            readings += len(batch.readings)
            result = response.results.add(max_score=outcome.max_score)
            for verdict in outcome.anomalies:
                result.anomalies.append(verdict_message(batch.device_id, verdict))
                metrics.VERDICTS.labels(SEVERITY_NAMES[verdict.severity]).inc()
            for change in outcome.changes:
                result.episodes.add(
                    kind=CHANGE_KIND.get(change.kind, detector_pb2.EpisodeChange.RESOLVED),
                    episode_id=change.episode_id,
                    device_id=batch.device_id,
                    sensor=change.sensor,
                    severity=change.severity,
                    verdict=verdict_message(batch.device_id, change.verdict),
                    started=from_seconds(change.started),
                )
                metrics.EPISODES.labels(change.kind).inc()
        metrics.READINGS.inc(readings)
        metrics.SERIES.set(len(self.detector.series))
        return response


class DetectorApp:
    """The detector service for the bootstrap."""

    service_names: ClassVar[list[str]] = [
        detector_pb2.DESCRIPTOR.services_by_name["Detector"].full_name
    ]

    def __init__(self, settings: DetectorSettings, redis: Redis) -> None:
        self.settings = settings
        self.redis = redis
        self.detector = Detector(load(settings.rules_path))
        self.grpc_options: list[tuple[str, Any]] = [
            ("grpc.max_receive_message_length", settings.max_message_bytes),
            ("grpc.max_send_message_length", settings.max_message_bytes),
        ]

    def register(self, server: aio.Server) -> None:
        detector_pb2_grpc.add_DetectorServicer_to_server(DetectorServicer(self.detector), server)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None
