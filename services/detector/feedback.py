"""Operator feedback: false-alarm acks from `vigil:events` widen that series' tolerance.

The notifier publishes an `ack` event when an operator acknowledges an alert; with
`false_alarm: true` every detector shard sees it here (XREAD from the stream's newest
entry at start), and the shard that holds the series widens its tolerance (see the
engine's `false_alarm`). Feedback is state like any other: it is in the snapshot.
Redis trouble pauses the reader, never the detector.
"""

from __future__ import annotations

import asyncio
import json
import logging

from redis.asyncio import Redis
from redis.exceptions import RedisError

from services.common import metrics as common_metrics
from services.common.events import newest_id, read_after
from services.detector import metrics
from services.detector.engine import Detector

log = logging.getLogger(__name__)
BLOCK_MS = 1000
BATCH = 500


class FeedbackReader:
    def __init__(self, detector: Detector, redis: Redis) -> None:
        self.detector = detector
        self.redis = redis
        self.last_id = "0-0"
        self.applied = asyncio.Event()  # set whenever feedback changed a tolerance

    async def start_at_newest(self) -> None:
        self.last_id = await newest_id(self.redis) or "0-0"

    async def read_once(self, block_ms: int = BLOCK_MS) -> int:
        """Read what is new; returns how many false alarms were applied here."""
        applied = 0
        for entry_id, fields in await read_after(self.redis, self.last_id, BATCH, block_ms):
            self.last_id = entry_id
            if fields.get("kind") != "ack":
                continue
            try:
                event = json.loads(fields["data"])
            except (KeyError, ValueError):
                continue
            if not isinstance(event, dict) or event.get("false_alarm") is not True:
                continue
            held = self.detector.false_alarm(
                str(event.get("device_id") or ""),
                str(event.get("sensor") or ""),
                str(event.get("episode_id") or event.get("alert_id") or ""),
            )
            metrics.FEEDBACK.labels("applied" if held else "elsewhere").inc()
            if held:
                applied += 1
                log.info(
                    "false alarm: tolerance widened",
                    extra={"device_id": event.get("device_id"), "sensor": event.get("sensor")},
                )
        if applied:
            self.applied.set()
        return applied

    async def run(self) -> None:
        while True:
            try:
                await self.read_once()
            except RedisError as exc:
                common_metrics.ERRORS.labels("detector", "feedback").inc()
                log.error("feedback reader paused", extra={"error": str(exc)})
                await asyncio.sleep(1.0)  # back off before retrying Redis
