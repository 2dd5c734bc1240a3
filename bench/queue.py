"""The analysis queue on one Redis: claim + complete per second with 1, 4 and 8
concurrent workers, against a plain ZPOPMAX loop (the unsafe queue: a worker that dies
after popping loses the job) with the same workers, in the same run.

Workers are asyncio tasks in this process, each with its own connection from the pool:
one Python client, whose CPU (not Redis) is the ceiling on a small machine; analyzer
replicas add up. Each worker count is measured twice, alternating with its baseline.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from redis.asyncio import Redis

from bench.report import Figure
from bench.size import Size
from bench.stats import median
from services.common import keys
from services.common.queue import JobQueue
from services.common.scripts import Scripts

STAGE = "queue"
BODY = {"kind": "alert", "device_id": "bench", "sensor": "temperature", "severity": "critical"}


async def _fill(queue: JobQueue, jobs: int) -> None:
    for start in range(0, jobs, 100):
        await asyncio.gather(
            *(queue.enqueue(f"j{i}", 1 + i % 3, BODY) for i in range(start, min(jobs, start + 100)))
        )


async def claim_complete_rate(redis: Redis, jobs: int, workers: int) -> float:
    await redis.flushall()
    queue = JobQueue(redis, Scripts(redis))
    await _fill(queue, jobs)

    async def worker() -> None:
        while (claim := await queue.claim()) is not None:
            await queue.complete(claim, None)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(workers)))
    elapsed = time.perf_counter() - started
    if await redis.zcard(keys.QUEUE) or await redis.zcard(keys.QUEUE_LEASES):
        raise RuntimeError("jobs left in the queue after every worker stopped")
    return jobs / elapsed


async def zpopmax_rate(redis: Redis, jobs: int, workers: int) -> float:
    await redis.flushall()
    for start in range(0, jobs, 1000):
        await redis.zadd(keys.QUEUE, {f"j{i}": i for i in range(start, min(jobs, start + 1000))})

    async def worker() -> None:
        while await redis.zpopmax(keys.QUEUE):
            pass

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(workers)))
    return jobs / (time.perf_counter() - started)


async def run(redis: Redis, size: Size, progress: Callable[[str], None]) -> list[Figure]:
    jobs = size.pick(10_000, 2_000, 300)
    figures = []
    for workers in (1, 4, 8):
        progress(f"queue: {workers} worker(s), {jobs} jobs, twice each")
        ours: list[float] = []
        base: list[float] = []
        for _ in range(2):
            base.append(await zpopmax_rate(redis, jobs, workers))
            ours.append(await claim_complete_rate(redis, jobs, workers))
        figures.append(
            Figure(
                STAGE,
                f"claim + complete/s, {workers} worker(s)",
                median(ours),
                "jobs/s",
                median(base),
                "plain ZPOPMAX loop (loses jobs), same workers",
                parameters={
                    "workers": workers,
                    "jobs": jobs,
                    "workers_are": "asyncio tasks in one process, one connection each",
                    "redis": "private redis-server, AOF on (everysec)",
                },
                samples=[round(x) for x in ours],
            )
        )
    return figures
