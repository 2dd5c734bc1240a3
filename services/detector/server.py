"""The detector's gRPC edge and its background work.

`Detect` turns each device batch into an engine call and the outcome back into
messages. Around it run the rules watcher (hot reload), the silence sweep (offline /
missing-data alerts), the feedback reader (false alarms) and periodic snapshots; the
state is restored from the shard's snapshot before the server reports SERVING, and
saved once more on shutdown. A bad request is refused whole and never judged in part.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Iterable
from typing import Any, ClassVar

from grpc import aio
from redis.asyncio import Redis
from vigil.v1 import detector_pb2, detector_pb2_grpc

from services.common.cancel import cancel_and_wait
from services.common.errors import InvalidArgument
from services.common.events import SEVERITY_NAMES
from services.common.scripts import Scripts
from services.detector import metrics
from services.detector.convert import change_message, verdict_message
from services.detector.engine import Detector
from services.detector.episodes import Change
from services.detector.feedback import FeedbackReader
from services.detector.reload import RulesWatcher
from services.detector.rules.parse import load
from services.detector.settings import DetectorSettings
from services.detector.snapshots import Snapshots
from services.detector.sweeper import Sweeper

log = logging.getLogger(__name__)
Row = tuple[str, float, float]


def rows(index: int, batch: detector_pb2.DeviceBatch) -> Iterable[Row]:
    """The (sensor, unix seconds, value) rows of a batch, columns or messages, checked
    alike: every time and value finite."""
    if batch.readings:
        sensors = [r.sensor for r in batch.readings]
        times = [r.time.seconds + r.time.nanos / 1e9 for r in batch.readings]
        values = [r.value for r in batch.readings]
    else:
        sensors, times, values = list(batch.sensors), list(batch.times), list(batch.values)
    if not len(sensors) == len(times) == len(values):
        raise InvalidArgument(f"batches[{index}]", "sensors, times and values differ in length")
    if not (all(map(math.isfinite, times)) and all(map(math.isfinite, values))):
        raise InvalidArgument(f"batches[{index}]", "times and values must be finite")
    return zip(sensors, times, values, strict=True)


class DetectorServicer(detector_pb2_grpc.DetectorServicer):
    def __init__(self, detector: Detector, sweeper: Sweeper | None = None) -> None:
        self.detector = detector
        self.sweeper = sweeper

    async def Detect(
        self, request: detector_pb2.DetectRequest, context: aio.ServicerContext[Any, Any]
    ) -> detector_pb2.DetectResponse:
        started = time.perf_counter()
        response = detector_pb2.DetectResponse()
        readings = 0
        # Validate every batch before judging any: a bad request changes nothing.
        checked = [rows(index, batch) for index, batch in enumerate(request.batches)]
        for batch, batch_rows in zip(request.batches, checked, strict=True):
            outcome = self.detector.process(
                batch.device_id, batch_rows, labels=dict(batch.labels), seq=batch.seq
            )
            if self.sweeper is not None and self.sweeper.unwritten and not outcome.duplicate:
                self._defer(batch.device_id, outcome.changes)
            result = response.results.add(max_score=outcome.max_score)
            for verdict in outcome.anomalies:
                result.anomalies.append(verdict_message(batch.device_id, verdict))
            for change in outcome.changes:
                result.episodes.append(change_message(batch.device_id, change))
            if outcome.duplicate:
                metrics.BATCHES.labels("duplicate").inc()
                continue
            metrics.BATCHES.labels("judged").inc()
            if outcome.sequence:
                metrics.SEQUENCE.labels(outcome.sequence).inc()
            readings += len(batch.readings) or len(batch.values)
            for verdict in outcome.anomalies:
                metrics.VERDICTS.labels(SEVERITY_NAMES[verdict.severity]).inc()
            for change in outcome.changes:
                metrics.EPISODES.labels(change.kind).inc()
        metrics.READINGS.inc(readings)
        metrics.DETECT_SECONDS.observe(time.perf_counter() - started)
        return response

    def _defer(self, device_id: str, changes: list[Change]) -> None:
        """Changes of episodes whose opening the sweep has not written yet go out after
        it, from the sweep, not with this batch (in place: a resend repeats none)."""
        assert self.sweeper is not None
        device = self.detector.devices[device_id]
        kept = []
        for change in changes:
            if change.episode_id in self.sweeper.unwritten:
                self.sweeper.defer(device, change)
            else:
                kept.append(change)
        changes[:] = kept


class DetectorApp:
    """The detector service for the bootstrap."""

    service_names: ClassVar[list[str]] = [
        detector_pb2.DESCRIPTOR.services_by_name["Detector"].full_name
    ]

    def __init__(self, settings: DetectorSettings, redis: Redis) -> None:
        self.settings = settings
        self.redis = redis
        self.detector = Detector(load(settings.rules_path), results_kept=settings.results_kept)
        self.snapshots = Snapshots(redis, self.detector, settings.shard)
        self.sweeper = Sweeper(
            self.detector,
            redis,
            Scripts(redis),
            self.snapshots,
            events_maxlen=settings.events_maxlen,
            idle_device_s=settings.idle_device_s,
        )
        self.feedback = FeedbackReader(self.detector, redis)
        self.watcher = (
            RulesWatcher(self.detector, settings.rules_path, settings.rules_poll_s)
            if settings.rules_path is not None
            else None
        )
        self._tasks: list[asyncio.Task[None]] = []
        self.grpc_options: list[tuple[str, Any]] = [
            ("grpc.max_receive_message_length", settings.max_message_bytes),
            ("grpc.max_send_message_length", settings.max_message_bytes),
        ]

    def register(self, server: aio.Server) -> None:
        detector_pb2_grpc.add_DetectorServicer_to_server(
            DetectorServicer(self.detector, self.sweeper), server
        )

    async def start(self) -> None:
        restored = await self.snapshots.restore()
        log.info("state restored", extra={"shard": self.settings.shard, "devices": restored})
        await self.feedback.start_at_newest()
        self._spawn(self.sweeper.run(self.settings.sweep_s), "sweep")
        self._spawn(self.feedback.run(), "feedback")
        self._spawn(self._snapshot_loop(), "snapshots")
        self._spawn(self._gauges(), "gauges")
        if self.watcher is not None:
            self._spawn(self.watcher.run(), "rules")

    def _spawn(self, coro: Any, name: str) -> None:
        self._tasks.append(asyncio.create_task(coro, name=f"detector-{name}"))

    async def _snapshot_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.snapshot_s)  # periodic by design
            try:
                await self.snapshots.save()
            except Exception:  # keep snapshotting; the next one retries these devices
                log.exception("snapshot failed")

    async def _gauges(self) -> None:
        while True:
            metrics.DEVICES.set(len(self.detector.devices))
            metrics.SERIES.set(self.detector.series_count)
            await asyncio.sleep(5.0)  # gauges are sampled, not events

    async def stop(self) -> None:
        await cancel_and_wait(self._tasks)
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        try:
            await self.sweeper.publish()  # what an outage kept back, if Redis is back
        except Exception:  # shutting down: say so, do not hang
            log.exception("silence alerts not published")
        try:
            saved = await self.snapshots.save()
            log.info("state saved", extra={"shard": self.settings.shard, "devices": saved})
        except Exception:  # shutting down: say so, do not hang
            log.exception("final snapshot failed")
