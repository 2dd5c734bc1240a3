"""The silence sweep: offline devices and missing sensors, published by the detector.

No batch arrives from a silent device, so no Detect call can report it. Every
`VIGIL_SWEEP_SECONDS` the engine's `sweep` lists the offline / missing-data episodes
that just opened; they become `alert` events and analysis jobs exactly like ingest's
(same builder, `services.common.alerts`), written by one script per sweep
(`detector_alerts.lua`). They resolve through the normal Detect path when data comes
back. Once a minute, devices idle longer than `VIGIL_DETECTOR_IDLE_DEVICE_SECONDS`
are forgotten (memory and snapshot). It never raises the same silence twice: the
episode stays open until data returns.
"""

from __future__ import annotations

import asyncio
import json
import logging

from redis.asyncio import Redis
from redis.exceptions import RedisError

from services.common import keys
from services.common import metrics as common_metrics
from services.common.alerts import plan, script_payload
from services.common.scripts import Scripts
from services.detector import metrics
from services.detector.convert import change_message
from services.detector.engine import Detector
from services.detector.snapshots import Snapshots

log = logging.getLogger(__name__)
FORGET_EVERY_S = 60.0


class Sweeper:
    def __init__(
        self,
        detector: Detector,
        redis: Redis,
        scripts: Scripts,
        snapshots: Snapshots,
        *,
        events_maxlen: int,
        idle_device_s: float,
    ) -> None:
        self.detector = detector
        self.redis = redis
        self.scripts = scripts
        self.snapshots = snapshots
        self.events_maxlen = events_maxlen
        self.idle_device_s = idle_device_s
        self._forgot_at = detector.clock()

    async def sweep(self) -> int:
        """One sweep; returns the number of alerts published."""
        opened = self.detector.sweep()
        events = []
        jobs = []
        for device, change in opened:
            more_events, more_jobs = plan(device.labels, [change_message(device.device_id, change)])
            events += more_events
            jobs += more_jobs
            metrics.SILENCE_ALERTS.labels("offline" if not change.sensor else "missing").inc()
            metrics.EPISODES.labels(change.kind).inc()
        if events:
            await self.scripts.detector_alerts(
                keys=[keys.EVENTS, keys.QUEUE, *(keys.job(job[0]) for job in jobs)],
                args=[
                    self.events_maxlen,
                    json.dumps(script_payload(events, jobs)),
                    keys.QUEUE_NOTIFY,
                ],
            )
            common_metrics.EVENTS_PUBLISHED.labels("alert").inc(len(events))
        now = self.detector.clock()
        if now - self._forgot_at >= FORGET_EVERY_S:
            self._forgot_at = now
            gone = self.detector.forget_idle(self.idle_device_s)
            await self.snapshots.forget(gone)
        return len(events)

    async def run(self, period_s: float) -> None:
        while True:
            await asyncio.sleep(period_s)  # a periodic sweep by design
            try:
                await self.sweep()
            except RedisError as exc:
                # The episodes stay open in memory: the alerts are lost, not repeated.
                common_metrics.ERRORS.labels("detector", "sweep").inc()
                log.error("sweep could not publish", extra={"error": str(exc)})
