"""The queue's enqueue rules (merging per episode, the bound, aging), heartbeats, failures
and dead letters, against a real Redis with a driven clock."""

from __future__ import annotations

import json
from typing import Any

from redis.asyncio import Redis

from services.common import keys
from services.common.queue import JobQueue, alert_job_id
from services.common.scripts import Scripts
from services.ingest.commit import Committer

T0 = 1_764_000_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def make_queue(redis: Redis, clock: Clock, **options: Any) -> JobQueue:
    return JobQueue(redis, Scripts(redis), clock=clock, **options)


def alert_body(episode: str, severity: int) -> dict[str, Any]:
    return {"kind": "alert", "episode_id": episode, "device_id": "d1", "severity": severity}


async def enqueue_alert(queue: JobQueue, clock: Clock, episode: str, severity: int) -> str:
    clock.now += 1
    return await queue.enqueue(
        alert_job_id(episode, severity), severity, alert_body(episode, severity)
    )


async def test_keys_module_names_what_the_lua_library_derives(redis: Redis) -> None:
    clock = Clock()
    queue = make_queue(redis, clock)
    await queue.configure(1)
    await enqueue_alert(queue, clock, "ep", 2)
    await enqueue_alert(queue, clock, "other", 1)  # shed by the bound of 1
    assert await redis.get(keys.queue_episode("ep")) == alert_job_id("ep", 2)
    assert await redis.hget(keys.QUEUE_CONFIG, "max_depth") == "1"
    assert [f["id"] for _, f in await redis.xrange(keys.QUEUE_SHED)] == ["alert:other:1"]


async def test_same_severity_for_a_queued_episode_is_merged(redis: Redis) -> None:
    clock = Clock()
    queue = make_queue(redis, clock)
    assert await enqueue_alert(queue, clock, "ep", 2) == "added"
    # A different job id for the same episode and level (e.g. from another path).
    clock.now += 1
    outcome = await queue.enqueue("alert:ep:2b", 2, alert_body("ep", 2))
    assert outcome == "merged"
    assert await redis.zrange(keys.QUEUE, 0, -1) == ["alert:ep:2"]
    assert await redis.hget(keys.job("alert:ep:2"), "merged") == "1"


async def test_lower_severity_is_absorbed_by_a_running_higher_job(redis: Redis) -> None:
    clock = Clock()
    queue = make_queue(redis, clock)
    await enqueue_alert(queue, clock, "ep", 3)
    claim = await queue.claim()
    assert claim is not None
    assert await enqueue_alert(queue, clock, "ep", 2) == "merged"
    assert await queue.depth() == 0


async def test_escalation_replaces_the_queued_job_and_keeps_its_place_in_time(
    redis: Redis,
) -> None:
    clock = Clock()
    queue = make_queue(redis, clock)
    await enqueue_alert(queue, clock, "ep", 1)
    first_enqueued = clock.now
    await enqueue_alert(queue, clock, "other", 3)  # a critical job that arrived later
    assert await enqueue_alert(queue, clock, "ep", 3) == "added"
    assert set(await redis.zrange(keys.QUEUE, 0, -1)) == {"alert:ep:3", "alert:other:3"}
    assert not await redis.exists(keys.job("alert:ep:1"))
    job = await redis.hgetall(keys.job("alert:ep:3"))
    assert float(job["enqueued_ms"]) == first_enqueued
    first = await queue.claim()
    assert first is not None and first.job_id == "alert:ep:3"  # it waited longest


async def test_escalation_while_running_adds_a_second_job(redis: Redis) -> None:
    clock = Clock()
    queue = make_queue(redis, clock)
    await enqueue_alert(queue, clock, "ep", 2)
    running = await queue.claim()
    assert running is not None
    assert await enqueue_alert(queue, clock, "ep", 3) == "added"
    assert await redis.get(keys.queue_episode("ep")) == "alert:ep:3"
    # The older job finishing does not unlink the episode from the newer one.
    assert await queue.complete(running, None)
    assert await redis.get(keys.queue_episode("ep")) == "alert:ep:3"
    assert await enqueue_alert(queue, clock, "ep", 3) == "exists"


async def test_episode_takes_a_new_job_once_its_job_is_done(redis: Redis) -> None:
    clock = Clock()
    queue = make_queue(redis, clock)
    await enqueue_alert(queue, clock, "ep", 2)
    claim = await queue.claim()
    assert claim is not None and await queue.complete(claim, None)
    assert not await redis.exists(keys.queue_episode("ep"))
    clock.now += 1
    assert await queue.enqueue("alert:ep:2:again", 2, alert_body("ep", 2)) == "added"


async def test_bound_sheds_lowest_priority_newest_first_and_never_critical(redis: Redis) -> None:
    clock = Clock()
    queue = make_queue(redis, clock)
    await queue.configure(3)
    await enqueue_alert(queue, clock, "i-old", 1)
    await enqueue_alert(queue, clock, "w", 2)
    await enqueue_alert(queue, clock, "i-new", 1)
    assert await enqueue_alert(queue, clock, "c1", 3) == "added"  # sheds i-new
    assert await enqueue_alert(queue, clock, "i-later", 1) == "shed"  # it would be last
    assert await enqueue_alert(queue, clock, "c2", 3) == "added"  # sheds i-old
    assert await enqueue_alert(queue, clock, "c3", 3) == "added"  # sheds w
    assert await enqueue_alert(queue, clock, "c4", 3) == "added"  # over the bound: critical
    shed = [f["id"] for _, f in await redis.xrange(keys.QUEUE_SHED)]
    assert shed == ["alert:i-new:1", "alert:i-later:1", "alert:i-old:1", "alert:w:2"]
    assert await queue.depth() == 4
    assert await queue.depth_by_level() == {1: 0, 2: 0, 3: 4}
    for _, fields in await redis.xrange(keys.QUEUE_SHED):
        assert json.loads(fields["body"])["episode_id"] in fields["id"]
        assert not await redis.exists(keys.job(fields["id"]))


async def test_ingest_commit_applies_the_same_rules(redis: Redis) -> None:
    queue = make_queue(redis, Clock())
    await queue.configure(1)
    async with Committer(redis, Scripts(redis), 1000) as committer:
        await committer.apply("d1", 1, [], [("alert:a:1", 1, alert_body("a", 1))])
        await committer.apply("d1", 2, [], [("alert:b:3", 3, alert_body("b", 3))])
        await committer.apply("d1", 3, [], [("alert:b:2", 2, alert_body("b", 2))])
    assert await redis.zrange(keys.QUEUE, 0, -1) == ["alert:b:3"]
    assert [f["id"] for _, f in await redis.xrange(keys.QUEUE_SHED)] == ["alert:a:1"]


async def test_waiting_jobs_age_one_level_per_period_up_to_critical(redis: Redis) -> None:
    clock = Clock()
    queue = make_queue(redis, clock, aging_ms=60_000)
    await enqueue_alert(queue, clock, "info", 1)
    await enqueue_alert(queue, clock, "warn", 2)
    clock.now += 60_000  # both waited one period
    assert (await queue.reap()).promoted == 2
    assert await queue.depth_by_level() == {1: 0, 2: 1, 3: 1}
    await enqueue_alert(queue, clock, "crit-new", 3)
    order = []
    while (claim := await queue.claim()) is not None:
        order.append((claim.job_id, claim.level))
    # The aged warning waited longer than the new critical job, so it goes first.
    assert order == [("alert:warn:2", 3), ("alert:crit-new:3", 3), ("alert:info:1", 2)]


async def test_info_under_sustained_critical_load_is_claimed_after_two_periods(
    redis: Redis,
) -> None:
    clock = Clock()
    queue = make_queue(redis, clock, aging_ms=10_000)
    await enqueue_alert(queue, clock, "starved", 1)
    claimed = []
    for i in range(40):  # one new critical job per second, one claim per second
        await enqueue_alert(queue, clock, f"c{i}", 3)
        clock.now += 999
        await queue.reap()
        claim = await queue.claim()
        assert claim is not None
        claimed.append(claim.job_id)
    # At the 20th claim it has waited 20 s, two periods: info + 2 = critical level, and
    # older than every critical job still waiting.
    assert claimed.index("alert:starved:1") == 19


async def test_heartbeat_keeps_a_long_job_leased(redis: Redis) -> None:
    clock = Clock()
    queue = make_queue(redis, clock, lease_ms=1000)
    await enqueue_alert(queue, clock, "ep", 2)
    claim = await queue.claim()
    assert claim is not None
    for _ in range(5):
        clock.now += 900
        assert await queue.heartbeat(claim)
        assert (await queue.reap()).requeued == 0
    clock.now += 1001
    assert (await queue.reap()).requeued == 1
    assert not await queue.heartbeat(claim)
    assert not await queue.complete(claim, None)


async def test_failed_attempts_retry_then_dead_letter_with_the_last_error(redis: Redis) -> None:
    clock = Clock()
    queue = make_queue(redis, clock, max_attempts=3)
    await enqueue_alert(queue, clock, "ep", 2)
    outcomes = []
    for attempt in range(3):
        claim = await queue.claim()
        assert claim is not None and claim.attempt == attempt + 1
        outcomes.append(await queue.fail(claim, f"boom {attempt}"))
    assert outcomes == ["retry", "retry", "dead"]
    assert await queue.claim() is None
    assert await queue.dead_letters() == ["alert:ep:2"]
    job = await redis.hgetall(keys.job("alert:ep:2"))
    assert (job["state"], job["last_error"], job["failures"]) == ("dead", "boom 2", "3")
    assert 0 < await redis.ttl(keys.job("alert:ep:2")) <= 7 * 86_400
    assert not await redis.exists(keys.queue_episode("ep"))


async def test_release_gives_the_job_back_without_counting_a_failure(redis: Redis) -> None:
    clock = Clock()
    queue = make_queue(redis, clock, max_attempts=1)
    await enqueue_alert(queue, clock, "ep", 2)
    claim = await queue.claim()
    assert claim is not None and await queue.release(claim)
    again = await queue.claim()
    assert again is not None and again.job_id == claim.job_id and again.attempt == 2
    assert not await queue.complete(claim, None)  # the released attempt is fenced off
    assert await queue.complete(again, None)


async def test_stale_attempt_cannot_fail_or_heartbeat_the_new_one(redis: Redis) -> None:
    clock = Clock()
    queue = make_queue(redis, clock, lease_ms=100)
    await enqueue_alert(queue, clock, "ep", 2)
    stale = await queue.claim()
    assert stale is not None
    clock.now += 101
    await queue.reap()
    fresh = await queue.claim()
    assert fresh is not None
    assert await queue.fail(stale, "late") == "lost"
    assert not await queue.heartbeat(stale)
    assert await queue.complete(fresh, {"kind": "insight", "device_id": "d1"})
