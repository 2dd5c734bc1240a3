"""The analyzer's job loop: claim, work under a heartbeat, complete or fail.

A fixed number of worker tasks each claim one job at a time under a lease. Idle workers
wait on the queue's notify channel (with a timeout, since pub/sub can drop a message),
so a new job is picked up at once without polling Redis in a tight loop. While a job
runs its lease is extended every third of the lease; if the lease is lost (another
replica has the job now) the work is cancelled. A job that raises is given back for
another attempt, or dead-lettered after the configured number of failures; on shutdown
jobs in hand are released at once instead of waiting for their leases to expire. The
worker never interprets a job: the handler it is given does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from redis.asyncio import Redis

from services.analyzer import metrics
from services.common import keys
from services.common import metrics as common_metrics
from services.common.cancel import cancel_and_wait, cancelled
from services.common.events import Event, severity_name
from services.common.queue import Claim, JobQueue

log = logging.getLogger(__name__)

Handler = Callable[[Claim], Coroutine[Any, Any, tuple[Event | None, str]]]
OnDead = Callable[[str], Awaitable[None]]


class Worker:
    def __init__(
        self,
        redis: Redis,
        queue: JobQueue,
        handler: Handler,
        concurrency: int,
        on_dead: OnDead,
    ) -> None:
        self.redis = redis
        self.queue = queue
        self.handler = handler
        self.concurrency = concurrency
        self.on_dead = on_dead
        self.heartbeat_s = max(0.05, queue.lease_ms / 3000)
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
        await cancel_and_wait(self._tasks)
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _listen(self) -> None:
        # Loops test `_stopping` as well as being cancelled: a cancellation can be dropped
        # (see services.common.cancel), and the loop would then run on.
        while not self._stopping:
            pubsub = self.redis.pubsub()
            try:
                await pubsub.subscribe(keys.QUEUE_NOTIFY)
                while not self._stopping:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if message is not None:
                        self._wake.set()
            # Redis went away: workers still poll every second (a stray cancellation too).
            except (asyncio.CancelledError, Exception) as exc:
                if cancelled(exc):
                    raise
                common_metrics.ERRORS.labels("analyzer", "notify").inc()
                log.exception("queue notify subscription failed")
                await asyncio.sleep(1.0)
            finally:
                await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def _loop(self) -> None:
        while not self._stopping:
            try:
                claim = await self.queue.claim()
            # Redis hiccup: log, count, back off (a stray cancellation too).
            except (asyncio.CancelledError, Exception) as exc:
                if cancelled(exc):
                    raise
                common_metrics.ERRORS.labels("analyzer", "claim").inc()
                log.exception("claim failed")
                await self._idle(1.0)
                continue
            if claim is None:
                await self._idle(1.0)
                continue
            metrics.JOBS_CLAIMED.inc()
            wait_s = max(0.0, time.time() - claim.enqueued_ms / 1000)
            metrics.QUEUE_WAIT.labels(severity_name(claim.priority) or "info").observe(wait_s)
            try:
                await self._process(claim)
            # Redis failed around the job: its lease brings it back (a stray cancellation too).
            except (asyncio.CancelledError, Exception) as exc:
                if cancelled(exc):
                    raise
                common_metrics.ERRORS.labels("analyzer", "job").inc()
                log.exception("job bookkeeping failed", extra={"job_id": claim.job_id})

    async def _idle(self, timeout_s: float) -> None:
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):  # not wait_for: it drops cancellations
                await self._wake.wait()

    async def _process(self, claim: Claim) -> None:
        started = time.perf_counter()
        work = asyncio.create_task(self.handler(claim), name=f"job-{claim.job_id}")
        try:
            while True:
                done, _ = await asyncio.wait({work}, timeout=self.heartbeat_s)
                if done:
                    break
                if not await self._heartbeat(claim):
                    await cancel_and_wait([work])
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await work
                    metrics.JOBS_LOST_LEASE.inc()
                    log.warning("lease lost mid-job", extra={"job_id": claim.job_id})
                    return
            event, source = work.result()
        except asyncio.CancelledError:
            await cancel_and_wait([work])
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await work
            await self.queue.release(claim)  # shutting down: let another replica have it
            raise
        except Exception as exc:  # the job failed: another attempt, or the dead letters
            await self._failed(claim, exc)
            return
        metrics.ANALYSIS_SECONDS.labels(source).observe(time.perf_counter() - started)
        if await self.queue.complete(claim, event):
            metrics.JOBS_COMPLETED.labels(source).inc()
            metrics.JOB_ATTEMPTS.observe(claim.attempt)
            if event is not None:
                common_metrics.EVENTS_PUBLISHED.labels(str(event["kind"])).inc()
        else:
            metrics.JOBS_LOST_LEASE.inc()

    async def _heartbeat(self, claim: Claim) -> bool:
        """False only when the lease is certainly lost; a Redis error is not that."""
        try:
            return await self.queue.heartbeat(claim)
        except Exception:
            common_metrics.ERRORS.labels("analyzer", "heartbeat").inc()
            log.exception("heartbeat failed", extra={"job_id": claim.job_id})
            return True

    async def _failed(self, claim: Claim, exc: Exception) -> None:
        metrics.JOB_FAILURES.inc()
        log.exception("job failed", extra={"job_id": claim.job_id, "attempt": claim.attempt})
        try:
            outcome = await self.queue.fail(claim, f"{type(exc).__name__}: {exc}")
            if outcome == "dead":
                metrics.DEAD_LETTERS.inc()
                await self.on_dead(claim.job_id)
        except Exception:  # Redis is down too: the lease will bring the job back
            common_metrics.ERRORS.labels("analyzer", "fail").inc()
            log.exception("could not record the failure", extra={"job_id": claim.job_id})
