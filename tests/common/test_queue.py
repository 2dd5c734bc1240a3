"""The job queue's Lua scripts against a real Redis, and its model-based property test."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)
from redis.asyncio import Redis

from services.common import keys
from services.common.embedded_redis import EmbeddedRedis
from services.common.events import decode
from services.common.queue import Claim, JobQueue, job_score
from services.common.redis_client import connect
from services.common.scripts import Scripts
from services.ingest.commit import Committer


async def enqueue(redis: Redis, seq: int, *jobs: tuple[str, int]) -> None:
    async with Committer(redis, Scripts(redis), 1000) as committer:
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
    assert (await queue.reap()).requeued == 1
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
    for attempt in range(2):
        assert await queue.claim() is not None
        await redis.zadd(keys.QUEUE_LEASES, {"j": 0})
        assert (await queue.reap()).dead == ([] if attempt == 0 else ["j"])
    assert await queue.claim() is None
    assert await redis.lrange(keys.QUEUE_DEAD, 0, -1) == ["j"]
    job = await redis.hgetall(keys.job("j"))
    assert job["state"] == "dead" and job["last_error"] == "lease expired on attempt 2"
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


# --- Property-based: the queue against a model, across claim/expire/retry/complete ---

LEASE_MS = 1_000
AGING_MS = 50_000
MAX_ATTEMPTS = 2


@dataclass
class ModelJob:
    priority: int
    enqueued: int
    level: int
    attempts: int = 0
    failures: int = 0
    deadline: int | None = None  # set while leased

    @property
    def score(self) -> int:
        return job_score(self.level, self.enqueued)


class QueueMachine(RuleBasedStateMachine):
    """Random enqueue/claim/heartbeat/complete/fail/expire/reap against a plain model.

    Every job is always in exactly one place (waiting, leased, completed, dead, shed),
    Redis agrees with the model after every step, claims follow (level, age) order, and
    each completed job published exactly one event.
    """

    claims = Bundle("claims")

    def __init__(self, url: str) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.redis = connect(url)
        self.run(self.redis.flushall())
        self.now = 1_764_000_000_000
        self.queue = JobQueue(
            self.redis,
            Scripts(self.redis),
            lease_ms=LEASE_MS,
            max_attempts=MAX_ATTEMPTS,
            aging_ms=AGING_MS,
            clock=lambda: float(self.now),
        )
        self.bound = 0
        self.jobs: dict[str, ModelJob] = {}
        self.waiting: set[str] = set()
        self.leased: set[str] = set()
        self.completed: set[str] = set()
        self.dead: set[str] = set()
        self.shed: set[str] = set()

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def teardown(self) -> None:
        self.run(self.redis.aclose())
        self.loop.close()

    @initialize(bound=st.sampled_from([0, 3, 6]))
    def configure(self, bound: int) -> None:
        self.bound = bound
        self.run(self.queue.configure(bound))

    @rule(priority=st.integers(1, 3))
    def enqueue(self, priority: int) -> None:
        self.now += 1
        job_id = f"j{len(self.jobs)}"
        outcome = self.run(
            self.queue.enqueue(job_id, priority, {"job": job_id, "episode_id": job_id})
        )
        self.jobs[job_id] = ModelJob(priority, self.now, priority)
        self.waiting.add(job_id)
        expected = "added"
        while self.bound and len(self.waiting) > self.bound:
            victim = min(self.waiting, key=lambda j: self.jobs[j].score)
            if self.jobs[victim].level >= 3:
                break
            self.waiting.remove(victim)
            self.shed.add(victim)
            expected = "shed" if victim == job_id else expected
            event("shed")
        assert outcome == expected

    @rule(target=claims)
    def claim(self) -> Claim | None:
        self.now += 1
        claim = self.run(self.queue.claim())
        if not self.waiting:
            assert claim is None
            return None
        best = max(self.waiting, key=lambda j: self.jobs[j].score)
        assert claim is not None and claim.job_id == best
        job = self.jobs[best]
        job.attempts += 1
        job.deadline = self.now + LEASE_MS
        assert (claim.attempt, claim.level) == (job.attempts, job.level)
        assert claim.priority == job.priority
        self.waiting.remove(best)
        self.leased.add(best)
        return claim

    def holds_lease(self, claim: Claim | None) -> bool:
        if claim is None or claim.job_id not in self.leased:
            return False
        return self.jobs[claim.job_id].attempts == claim.attempt

    @rule(claim=claims)
    def complete(self, claim: Claim | None) -> None:
        if claim is None:
            return
        result = {"kind": "insight", "device_id": "d", "job_id": claim.job_id}
        expected = self.holds_lease(claim)
        assert self.run(self.queue.complete(claim, result)) == expected
        if expected:
            self.leased.remove(claim.job_id)
            self.completed.add(claim.job_id)
            event(f"completed on attempt {claim.attempt}")

    @rule(claim=claims)
    def fail(self, claim: Claim | None) -> None:
        if claim is None:
            return
        outcome = self.run(self.queue.fail(claim, "boom"))
        if not self.holds_lease(claim):
            assert outcome == "lost"
            return
        self.leased.remove(claim.job_id)
        assert outcome == self._failure(claim.job_id)
        event(f"fail -> {outcome}")

    @rule(claim=claims)
    def heartbeat(self, claim: Claim | None) -> None:
        if claim is None:
            return
        expected = self.holds_lease(claim)
        assert self.run(self.queue.heartbeat(claim)) == expected
        if expected:
            self.jobs[claim.job_id].deadline = self.now + LEASE_MS

    def _failure(self, job_id: str) -> str:
        job = self.jobs[job_id]
        job.failures += 1
        job.deadline = None
        if job.failures >= MAX_ATTEMPTS:
            self.dead.add(job_id)
            return "dead"
        self.waiting.add(job_id)
        return "retry"

    @rule(ms=st.sampled_from([0, 1, LEASE_MS // 2, LEASE_MS + 1, AGING_MS]))
    def advance_and_reap(self, ms: int) -> None:
        self.now += ms
        reaped = self.run(self.queue.reap())
        expired = sorted(j for j in self.leased if (self.jobs[j].deadline or 0) <= self.now)
        dead = []
        for job_id in expired:
            self.leased.remove(job_id)
            if self._failure(job_id) == "dead":
                dead.append(job_id)
                event("dead letter after lease expiries")
        assert sorted(reaped.dead) == sorted(dead)
        assert reaped.requeued == len(expired) - len(dead)
        promoted = 0
        for job_id in self.waiting:
            job = self.jobs[job_id]
            target = min(3, job.priority + (self.now - job.enqueued) // AGING_MS)
            if target > job.level:
                job.level = target
                promoted += 1
                event("aged")
        assert reaped.promoted == promoted

    @invariant()
    def redis_agrees_with_the_model(self) -> None:
        places = [self.waiting, self.leased, self.completed, self.dead, self.shed]
        assert sum(len(p) for p in places) == len(self.jobs)  # nothing lost or doubled
        queued = self.run(self.redis.zrange(keys.QUEUE, 0, -1, withscores=True))
        assert {j: s for j, s in queued} == {j: self.jobs[j].score for j in self.waiting}
        assert set(self.run(self.redis.zrange(keys.QUEUE_LEASES, 0, -1))) == self.leased
        assert set(self.run(self.queue.dead_letters())) == self.dead
        events = [
            json.loads(f["data"])["job_id"] for _, f in self.run(self.redis.xrange(keys.EVENTS))
        ]
        assert sorted(events) == sorted(self.completed)  # exactly one result each
        shed = [f["id"] for _, f in self.run(self.redis.xrange(keys.QUEUE_SHED))]
        assert sorted(shed) == sorted(self.shed)


def test_queue_matches_its_model(redis_server: EmbeddedRedis) -> None:
    run_state_machine_as_test(
        lambda: QueueMachine(redis_server.url),
        settings=settings(max_examples=60, stateful_step_count=40, deadline=None, database=None),
    )
