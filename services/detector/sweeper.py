"""The silence sweep: offline devices and missing sensors, published by the detector.

No batch arrives from a silent device, so no Detect call can report it. Every
`VIGIL_SWEEP_SECONDS` the engine's `sweep` lists the offline / missing-data episodes
that just opened; they become `alert` events and analysis jobs exactly like ingest's
(same builder, `services.common.alerts`), written by one script per sweep
(`detector_alerts.lua`). They resolve through the normal Detect path when data comes
back. Once a minute, devices idle longer than `VIGIL_DETECTOR_IDLE_DEVICE_SECONDS`
are forgotten (memory and snapshot). It never raises the same silence twice: the
episode stays open until data returns.

Order and delivery: an opening that could not be written (Redis away) is kept and
written by the next sweep, before anything newer. While an episode's opening is not
in Redis, Detect hands its later changes (the device reporting again) here too
(`defer`), so they follow the opening instead of overtaking it through ingest: a
dashboard never sees an alert resolved before it was opened, or opened after it
was resolved.
"""

from __future__ import annotations

import asyncio
import json
import logging

from redis.asyncio import Redis
from redis.exceptions import RedisError

from services.common import keys
from services.common import metrics as common_metrics
from services.common.alerts import Job, plan, script_payload
from services.common.events import Event
from services.common.scripts import Scripts
from services.detector import metrics
from services.detector.convert import change_message
from services.detector.engine import Detector
from services.detector.episodes import Change
from services.detector.snapshots import Snapshots
from services.detector.state import Device

log = logging.getLogger(__name__)
FORGET_EVERY_S = 60.0
MAX_UNWRITTEN = 10_000  # alert events kept while Redis is away; the oldest go first


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
        # Changes decided but not yet in Redis, in order (its events and jobs, episode).
        self._queue: list[tuple[list[Event], list[Job], str]] = []
        self.unwritten: set[str] = set()  # episodes with a change in the queue

    def defer(self, device: Device, change: Change) -> None:
        """Publish a change of an episode in `unwritten` from here, after its opening."""
        self._add(device, change)

    def _add(self, device: Device, change: Change) -> None:
        events, jobs = plan(device.labels, [change_message(device.device_id, change)])
        self._queue.append((events, jobs, change.episode_id))
        self.unwritten.add(change.episode_id)
        if len(self._queue) > MAX_UNWRITTEN:
            dropped = len(self._queue) - MAX_UNWRITTEN
            del self._queue[:dropped]
            self.unwritten = {episode for _, _, episode in self._queue}
            metrics.SILENCE_DROPPED.inc(dropped)
            log.error("silence alerts dropped: Redis away too long", extra={"count": dropped})

    async def sweep(self) -> int:
        """One sweep; returns the number of alerts published."""
        for device, change in self.detector.sweep():
            self._add(device, change)
            metrics.SILENCE_ALERTS.labels("offline" if not change.sensor else "missing").inc()
            metrics.EPISODES.labels(change.kind).inc()
        published = await self.publish()
        now = self.detector.clock()
        if now - self._forgot_at >= FORGET_EVERY_S:
            self._forgot_at = now
            gone = self.detector.forget_idle(self.idle_device_s)
            await self.snapshots.forget(gone)
        return published

    async def publish(self) -> int:
        """Write what is unwritten (one script, in order); raises if Redis is away, and
        then keeps it for the next call."""
        published = 0
        while self._queue:  # changes deferred while a write ran go out next, in order
            taken = len(self._queue)
            events = [event for queued in self._queue for event in queued[0]]
            jobs = [job for queued in self._queue for job in queued[1]]
            await self.scripts.detector_alerts(
                keys=[keys.EVENTS, keys.QUEUE, *(keys.job(job[0]) for job in jobs)],
                args=[
                    self.events_maxlen,
                    json.dumps(script_payload(events, jobs)),
                    keys.QUEUE_NOTIFY,
                ],
            )
            del self._queue[:taken]
            self.unwritten = {episode for _, _, episode in self._queue}
            common_metrics.EVENTS_PUBLISHED.labels("alert").inc(len(events))
            published += len(events)
        return published

    async def run(self, period_s: float) -> None:
        while True:
            await asyncio.sleep(period_s)  # a periodic sweep by design
            try:
                await self.sweep()
            except RedisError as exc:
                # The alerts stay, in order, and go out with the next sweep.
                common_metrics.ERRORS.labels("detector", "sweep").inc()
                log.warning("sweep could not publish; retrying", extra={"error": str(exc)})
