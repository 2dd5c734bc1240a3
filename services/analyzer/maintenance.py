"""The reaper every replica runs (about once a second): expired leases back to the queue
or to the dead letters, aging, queue depth gauges, and the shed-job records.

Each shed record (stream `vigil:queue:shed`, written by the enqueue library) is read
through a consumer group, so exactly one replica counts and logs it; dead letters are
counted by the replica whose reap moved them. It never works on a job itself.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from services.analyzer import metrics
from services.analyzer.groups import GroupReader
from services.common import metrics as common_metrics
from services.common.cancel import Background, cancelled
from services.common.events import severity_name
from services.common.queue import JobQueue

log = logging.getLogger(__name__)

SHED_GROUP = "analyzer-shed"
STALE_MS = 30_000


class Maintenance:
    def __init__(
        self,
        queue: JobQueue,
        shed: GroupReader,
        on_dead: Callable[[str], Awaitable[None]],
        on_shed: Callable[[str, str, str], Awaitable[None]],
        period_s: float,
    ) -> None:
        self.queue = queue
        self.shed = shed
        self.on_dead = on_dead
        self.on_shed = on_shed
        self.period_s = period_s
        self._loop = Background()

    async def start(self) -> None:
        await self.shed.ensure("0")  # sheds while no analyzer ran are counted too
        self._loop.start(self._run(), "queue-reaper")

    async def stop(self) -> None:
        await self._loop.stop()

    async def _run(self) -> None:
        next_sweep = 0.0
        while not self._loop.stopping:  # see services.common.cancel.Background
            try:
                await self.tick(sweep=time.monotonic() >= next_sweep)
                if time.monotonic() >= next_sweep:
                    next_sweep = time.monotonic() + STALE_MS / 1000
            # Redis hiccup: log, count, carry on next period (a stray cancellation too).
            except (asyncio.CancelledError, Exception) as exc:
                if cancelled(exc):
                    raise
                common_metrics.ERRORS.labels("analyzer", "reaper").inc()
                log.exception("reaper failed")
            await asyncio.sleep(self.period_s)  # a period, not a wait for an event

    async def tick(self, *, sweep: bool = False) -> None:
        reaped = await self.queue.reap()
        metrics.LEASES_EXPIRED.inc(reaped.requeued + len(reaped.dead))
        metrics.JOBS_PROMOTED.inc(reaped.promoted)
        for job_id in reaped.dead:
            metrics.DEAD_LETTERS.inc()
            await self.on_dead(job_id)
        for level, count in (await self.queue.depth_by_level()).items():
            metrics.QUEUE_DEPTH.labels(severity_name(level) or "info").set(count)
        entries = await self.shed.stale(STALE_MS, 100) if sweep else []
        entries += await self.shed.read(500, block_ms=None)
        for _entry_id, fields in entries:
            raw = str(fields.get("priority", ""))
            priority = severity_name(int(raw) if raw.isdigit() else 1) or "info"
            metrics.SHED_JOBS.labels(priority).inc()
            await self.on_shed(fields.get("id", ""), priority, fields.get("body", ""))
        await self.shed.ack([entry_id for entry_id, _ in entries])
