"""Baselines survive restarts: device states in `vigil:state:{shard}`.

Every `VIGIL_SNAPSHOT_SECONDS` the devices that changed since the last snapshot are
written (HSET in chunks, yielding to the event loop between chunks so Detect calls
keep flowing); at shutdown all changed devices are written once more. At start the
shard reads its hash back, so a restarted shard resumes its baselines, episodes and
feedback instead of re-learning. Forgotten (long idle) devices are deleted. An entry
that cannot be read is skipped and counted, never fatal.
"""

from __future__ import annotations

import asyncio
import logging
import time

from redis.asyncio import Redis

from services.common import keys
from services.detector import metrics
from services.detector.engine import Detector
from services.detector.state import decode, encode

log = logging.getLogger(__name__)
CHUNK = 200


class Snapshots:
    def __init__(self, redis: Redis, detector: Detector, shard: str) -> None:
        self.redis = redis
        self.detector = detector
        self.key = keys.detector_state(shard)

    async def restore(self) -> int:
        """Load every device state of this shard; returns how many were restored."""
        now = self.detector.clock()
        restored = 0
        async for device_id, text in self.redis.hscan_iter(self.key, count=CHUNK):
            try:
                device = decode(str(device_id), str(text), now)
            except ValueError as exc:
                metrics.SNAPSHOTS.labels("invalid").inc()
                log.warning(
                    "unreadable snapshot entry", extra={"device_id": device_id, "error": str(exc)}
                )
                continue
            self.detector.devices[device.device_id] = device
            restored += 1
        metrics.SNAPSHOTS.labels("restored").inc(restored)
        return restored

    async def save(self) -> int:
        """Write the devices changed since the last save; returns how many."""
        started = time.perf_counter()
        dirty = [d for d in self.detector.devices.values() if d.dirty]
        for start in range(0, len(dirty), CHUNK):
            chunk = dirty[start : start + CHUNK]
            mapping = {device.device_id: encode(device) for device in chunk}
            for device in chunk:
                device.dirty = False
            try:
                await self.redis.hset(self.key, mapping=mapping)  # type: ignore[arg-type]
            except BaseException:
                for device in chunk:
                    device.dirty = True
                raise
            await asyncio.sleep(0)  # let Detect calls in between chunks
        metrics.SNAPSHOTS.labels("saved").inc(len(dirty))
        metrics.SNAPSHOT_SECONDS.observe(time.perf_counter() - started)
        return len(dirty)

    async def forget(self, device_ids: list[str]) -> None:
        if device_ids:
            await self.redis.hdel(self.key, *device_ids)

    async def count(self) -> int:
        return int(await self.redis.hlen(self.key))
