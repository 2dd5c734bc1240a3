"""The analyzer's job loop: claim, diagnose, complete.

A fixed number of worker tasks each claim one job at a time under a lease. Idle workers
wait on the queue's notify channel (with a timeout, since pub/sub can drop a message),
so a new job is picked up at once without polling Redis in a tight loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from redis.asyncio import Redis

from services.analyzer import builtin, metrics
from services.common import keys
from services.common import metrics as common_metrics
from services.common.events import Event, rfc3339
from services.common.queue import Claim, JobQueue

log = logging.getLogger(__name__)


def insight_event(claim: Claim, insight: dict[str, Any], source: str, cost: float) -> Event:
    body = claim.body
    return {
        "kind": "insight",
        "job_id": claim.job_id,
        "alert_id": body.get("alert_id") or body.get("episode_id"),
        "episode_id": body.get("episode_id"),
        "device_id": body.get("device_id"),
        "sensor": body.get("sensor"),
        "severity": body.get("severity"),
        "time": rfc3339(time.time()),
        **insight,
        "source": source,
        "cost": cost,
    }


class Worker:
    def __init__(self, redis: Redis, queue: JobQueue, concurrency: int) -> None:
        self.redis = redis
        self.queue = queue
        self.concurrency = concurrency
        self._tasks: list[asyncio.Task[None]] = []
        self._wake = asyncio.Event()
        self._stopping = False

    async def start(self) -> None:
        self._tasks = [asyncio.create_task(self._listen(), name="queue-notify")]
        self._tasks += [
            asyncio.create_task(self._loop(), name=f"worker-{i}") for i in range(self.concurrency)
        ]

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _listen(self) -> None:
        pubsub = self.redis.pubsub()
        try:
            await pubsub.subscribe(keys.QUEUE_NOTIFY)
            while True:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                if message is not None:
                    self._wake.set()
        finally:
            await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def _loop(self) -> None:
        while not self._stopping:
            try:
                claim = await self.queue.claim()
            except Exception:  # Redis hiccup: log, count, back off
                common_metrics.ERRORS.labels("analyzer", "claim").inc()
                log.exception("claim failed")
                await self._idle(1.0)
                continue
            if claim is None:
                await self._idle(1.0)
                continue
            metrics.JOBS_CLAIMED.inc()
            await self._process(claim)

    async def _idle(self, timeout_s: float) -> None:
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout_s)

    async def _process(self, claim: Claim) -> None:
        started = time.perf_counter()
        try:
            insight = builtin.analyze(claim.body)
            source = "builtin"
            metrics.ANALYSIS_SECONDS.labels(source).observe(time.perf_counter() - started)
            done = await self.queue.complete(claim, insight_event(claim, insight, source, 0.0))
        except Exception:  # the lease brings the job back for another try
            metrics.JOB_FAILURES.inc()
            log.exception("job failed", extra={"job_id": claim.job_id, "attempt": claim.attempt})
            return
        if done:
            metrics.JOBS_COMPLETED.labels(source).inc()
            common_metrics.EVENTS_PUBLISHED.labels("insight").inc()
        else:
            metrics.JOBS_LOST_LEASE.inc()
