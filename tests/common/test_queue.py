"""The job queue's Lua scripts against a real Redis."""

from __future__ import annotations

import json

from redis.asyncio import Redis

from services.common import keys
from services.common.events import decode
from services.common.queue import JobQueue, job_score
from services.common.scripts import Scripts
from services.ingest.commit import Committer


async def enqueue(redis: Redis, seq: int, *jobs: tuple[str, int]) -> None:
    committer = Committer(redis, Scripts(redis), 1000)
    await committer.apply(
        "dev", seq, [], [(job_id, prio, {"job": job_id}) for job_id, prio in jobs]
    )


def test_score_orders_priority_before_age() -> None:
    now_ms = 1_764_000_000_000
    old_warning = job_score(2, now_ms - 3_600_000)
    new_critical = job_score(3, now_ms)
    assert new_critical > old_warning
    assert job_score(2, now_ms) > job_score(2, now_ms + 1)  # FIFO within a level


async def test_critical_job_is_claimed_before_older_warnings(redis: Redis) -> None:
    await enqueue(redis, 1, ("w1", 2))
    await enqueue(redis, 2, ("w2", 2))
    await enqueue(redis, 3, ("i1", 1))
    await enqueue(redis, 4, ("c1", 3))
    queue = JobQueue(redis, Scripts(redis))
    order = []
    while (claim := await queue.claim()) is not None:
        order.append(claim.job_id)
    assert order == ["c1", "w1", "w2", "i1"]


async def test_expired_lease_returns_job_and_stale_worker_cannot_complete(redis: Redis) -> None:
    await enqueue(redis, 1, ("j", 2))
    queue = JobQueue(redis, Scripts(redis), lease_ms=1)
    first = await queue.claim()
    assert first is not None and first.attempt == 1
    # Lease deadlines are Redis TIME in ms: make the lease expire without waiting.
    await redis.zadd(keys.QUEUE_LEASES, {"j": 0})
    second = await queue.claim()
    assert second is not None and second.job_id == "j" and second.attempt == 2
    assert not await queue.complete(first, {"kind": "insight", "device_id": "dev"})
    assert await queue.complete(second, {"kind": "insight", "device_id": "dev"})
    assert not await queue.complete(second, {"kind": "insight", "device_id": "dev"})
    events = [decode(fields) for _, fields in await redis.xrange(keys.EVENTS)]
    assert events == [{"kind": "insight", "device_id": "dev"}]
    assert not await redis.exists(keys.job("j"))


async def test_job_goes_to_dead_letters_after_max_attempts(redis: Redis) -> None:
    await enqueue(redis, 1, ("j", 1))
    queue = JobQueue(redis, Scripts(redis), max_attempts=2)
    for _ in range(2):
        assert await queue.claim() is not None
        await redis.zadd(keys.QUEUE_LEASES, {"j": 0})
    assert await queue.claim() is None
    assert await redis.lrange(keys.QUEUE_DEAD, 0, -1) == ["j"]
    job = await redis.hgetall(keys.job("j"))
    assert job["state"] == "dead" and job["last_error"] == "lease expired"
    assert json.loads(job["body"]) == {"job": "j"}


async def test_enqueue_of_existing_job_id_adds_nothing(redis: Redis) -> None:
    await enqueue(redis, 1, ("same", 3))
    await enqueue(redis, 2, ("same", 3))
    assert await redis.zcard(keys.QUEUE) == 1


async def test_jobs_of_one_level_are_first_in_first_out_within_a_millisecond(redis: Redis) -> None:
    names = [f"w{i:02d}" for i in range(30)]
    for seq, name in enumerate(names, 1):
        await enqueue(redis, seq, (name, 2))
    queue = JobQueue(redis, Scripts(redis))
    claimed = [claim.job_id for _ in names if (claim := await queue.claim()) is not None]
    assert claimed == names
