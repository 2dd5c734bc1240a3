"""A cancellation that escapes the Redis client (not a cancel of the worker) must not end
a worker, and a real cancel (shutdown) still ends it. Written while chasing the
analyzer's stall in the full network-fault run, which it turned out not to explain."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from services.analyzer.worker import Worker
from services.common.events import Event
from services.common.queue import Claim, JobQueue
from services.common.scripts import Scripts


class EscapingQueue(JobQueue):
    """The real queue, whose first claims fail the way redis-py can fail them."""

    escapes = 2

    async def claim(self) -> Claim | None:
        if self.escapes:
            self.escapes -= 1
            inner = asyncio.get_running_loop().create_future()
            inner.cancel()
            await inner  # raises CancelledError in a task nobody cancelled
        return await super().claim()


async def test_a_worker_survives_a_stray_cancellation_and_still_stops(redis: Redis) -> None:
    queue = EscapingQueue(redis, Scripts(redis))
    done = asyncio.Event()

    async def handler(claim: Claim) -> tuple[Event | None, str]:
        done.set()
        return None, "builtin"

    async def on_dead(job_id: str) -> None:
        raise AssertionError(job_id)

    worker = Worker(redis, queue, handler, 1, on_dead)
    await worker.start()
    try:
        await queue.enqueue("job-1", 2, {"kind": "alert"})
        await asyncio.wait_for(done.wait(), 10)
        assert queue.escapes == 0
    finally:
        await asyncio.wait_for(worker.stop(), 10)
    assert all(task.done() for task in worker._tasks)
