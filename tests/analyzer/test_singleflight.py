"""Single-flight in one process and across replicas (separate Redis clients)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from redis.asyncio import Redis

from services.analyzer.singleflight import SingleFlight, WaitTimedOut
from services.common import keys
from services.common.embedded_redis import EmbeddedRedis
from services.common.redis_client import connect
from services.common.scripts import Scripts


class Store:
    """Stands for the L2 cache: what the leader writes, waiters look up."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self.computed = 0
        self.started = asyncio.Event()

    async def lookup(self) -> str | None:
        value = await self.redis.get("test:value")
        return None if value is None else str(value)

    def compute(self, release: asyncio.Event, value: str = "v") -> Callable[[], Awaitable[str]]:
        async def run() -> str:
            self.computed += 1
            self.started.set()
            await release.wait()
            await self.redis.set("test:value", value)
            return value

        return run


@pytest.fixture
async def replicas(redis_server: EmbeddedRedis, redis: Redis) -> AsyncIterator[list[Redis]]:
    clients = [connect(redis_server.url) for _ in range(3)]
    yield clients
    for client in clients:
        await client.aclose()


def flight(redis: Redis, lock_s: float = 5, wait_s: float = 5) -> SingleFlight[str]:
    return SingleFlight(redis, Scripts(redis), lock_s, wait_s, poll_s=0.01)


async def test_one_computation_for_many_callers_in_many_replicas(
    redis: Redis, replicas: list[Redis]
) -> None:
    store = Store(redis)
    release = asyncio.Event()
    compute = store.compute(release)
    flights = [flight(r) for r in replicas]
    calls = [asyncio.create_task(flights[i % 3].run("k", store.lookup, compute)) for i in range(12)]
    await store.started.wait()
    release.set()
    results = await asyncio.gather(*calls)
    assert store.computed == 1
    assert sorted(results) == [("v", False)] * 11 + [("v", True)]
    assert not await redis.exists(keys.cache_lock("k"))


async def test_waiter_takes_over_when_the_owner_dies(redis: Redis, replicas: list[Redis]) -> None:
    # A dead owner: its lock exists and is never refreshed or released.
    await redis.set(keys.cache_lock("k"), "dead-owner", px=200)
    store = Store(redis)
    release = asyncio.Event()
    release.set()
    value, led = await flight(replicas[0]).run("k", store.lookup, store.compute(release))
    assert (value, led, store.computed) == ("v", True, 1)


async def test_a_long_running_owner_keeps_its_lock(redis: Redis, replicas: list[Redis]) -> None:
    store = Store(redis)
    release = asyncio.Event()
    owner = asyncio.create_task(
        flight(replicas[0], lock_s=0.15).run("k", store.lookup, store.compute(release))
    )
    await store.started.wait()
    await asyncio.sleep(0.5)  # Redis expires keys on its own clock: let three leases pass
    assert await redis.get(keys.cache_lock("k")) is not None
    release.set()
    assert await owner == ("v", True)


async def test_waiting_is_bounded(redis: Redis, replicas: list[Redis]) -> None:
    await redis.set(keys.cache_lock("k"), "busy-owner", px=60_000)
    store = Store(redis)
    with pytest.raises(WaitTimedOut):
        await flight(replicas[0], wait_s=0.1).run("k", store.lookup, store.compute(asyncio.Event()))
    assert store.computed == 0
