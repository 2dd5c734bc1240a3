"""Token buckets on a real Redis."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from redis.asyncio import Redis

from services.common.embedded_redis import EmbeddedRedis
from services.common.errors import ResourceExhausted
from services.common.ratelimit import Limit, RateLimiter
from services.common.redis_client import connect
from services.common.scripts import Scripts


def limiter(redis: Redis) -> RateLimiter:
    return RateLimiter(redis, Scripts(redis))


async def test_burst_is_granted_then_refused_with_a_wait(redis: Redis) -> None:
    rpm = Limit("t-rpm", limit=600, period_s=60, burst=5)  # refills 10/s
    rl = limiter(redis)
    grants = [await rl.try_acquire([(rpm, 1)]) for _ in range(6)]
    assert grants[:5] == [0.0] * 5
    assert 0 < grants[5] <= 0.11


async def test_several_buckets_are_taken_all_or_nothing(redis: Redis) -> None:
    requests = Limit("t-req", limit=60, burst=10)
    tokens = Limit("t-tok", limit=60, burst=100)
    rl = limiter(redis)
    assert await rl.try_acquire([(requests, 1), (tokens, 90)]) == 0.0
    assert await rl.try_acquire([(requests, 1), (tokens, 90)]) > 0
    # The refused call took nothing from the request bucket: nine are left.
    assert all([await rl.try_acquire([(requests, 1)]) == 0.0 for _ in range(9)])
    assert await rl.try_acquire([(requests, 1)]) > 0


async def test_settle_charges_the_difference(redis: Redis) -> None:
    tokens = Limit("t-settle", limit=60, burst=100)
    rl = limiter(redis)
    assert await rl.try_acquire([(tokens, 50)]) == 0.0
    await rl.settle(tokens, 40)  # the call used 90, not the 50 reserved
    assert await rl.try_acquire([(tokens, 20)]) > 0
    await rl.settle(tokens, -40)  # ... or gave back what it did not use
    assert await rl.try_acquire([(tokens, 20)]) == 0.0


async def test_acquire_gives_up_with_retry_after(redis: Redis) -> None:
    slow = Limit("t-slow", limit=1, period_s=3600, burst=1)
    rl = limiter(redis)
    assert await rl.acquire([(slow, 1)], timeout_s=1) >= 0
    with pytest.raises(ResourceExhausted) as failure:
        await rl.acquire([(slow, 1)], timeout_s=0.5)
    assert failure.value.retry_after is not None and failure.value.retry_after > 3000


def test_default_burst_is_one_seconds_worth() -> None:
    assert Limit("x", limit=600).capacity == 10
    assert Limit("x", limit=6).capacity == 1
    with pytest.raises(ValueError, match="must be > 0"):
        Limit("x", limit=0)


async def test_cost_above_burst_is_granted_from_a_full_bucket_into_debt(redis: Redis) -> None:
    tokens = Limit("t-big", limit=600, period_s=60, burst=10)  # 10/s
    rl = limiter(redis)
    assert await rl.try_acquire([(tokens, 25)]) == 0.0
    wait = await rl.try_acquire([(tokens, 1)])
    assert 1.4 < wait <= 1.6  # 15 of debt + 1, refilled at 10/s


@settings(max_examples=40, deadline=None, database=None)
@given(
    steps=st.lists(
        st.tuples(st.integers(0, 400), st.floats(0.5, 30), st.floats(-10, 10)),
        min_size=1,
        max_size=60,
    )
)
async def test_granted_units_never_exceed_burst_plus_refill_in_any_window(
    redis_server: EmbeddedRedis, steps: list[tuple[int, float, float]]
) -> None:
    """Any sequence of requests (and settlements) at any times: in every window the
    units kept (granted minus given back) stay within burst + rate x window + one cost."""
    client = connect(redis_server.url)
    try:
        await client.flushall()
        now = 1_764_000_000_000.0
        rl = RateLimiter(client, Scripts(client), clock=lambda: now)
        limit = Limit("prop", limit=600, period_s=60, burst=20)  # 10 units/s
        kept: list[tuple[float, float]] = []  # (time ms, units)
        for advance_ms, cost, settle in steps:
            now += advance_ms
            if await rl.try_acquire([(limit, cost)]) == 0.0:
                kept.append((now, cost))
                if settle < 0 and cost + settle > 0:  # gave some back after the call
                    await rl.settle(limit, settle)
                    kept.append((now, settle))
        for start, _ in kept:
            for span_ms in (0.0, 500.0, 2_000.0, 10_000.0):
                units = sum(u for t, u in kept if start <= t <= start + span_ms)
                assert units <= limit.capacity + limit.rate_per_ms * span_ms + 30 + 1e-6
    finally:
        await client.aclose()


async def test_driven_clock_refills_exactly(redis: Redis) -> None:
    now = 1_764_000_000_000.0
    rl = RateLimiter(redis, Scripts(redis), clock=lambda: now)
    limit = Limit("clock", limit=60, period_s=60, burst=1)  # 1 per second
    assert await rl.try_acquire([(limit, 1)]) == 0.0
    assert await rl.try_acquire([(limit, 1)]) == 1.0
    now += 999
    assert 0 < await rl.try_acquire([(limit, 1)]) <= 0.002  # a millisecond, rounded up
    now += 1
    assert await rl.try_acquire([(limit, 1)]) == 0.0
