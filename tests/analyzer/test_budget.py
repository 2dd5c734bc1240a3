"""The daily budget: reservations never pass it, settlements correct it."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from services.analyzer.budget import Budget, Prices, utc_day
from services.common import keys
from services.common.redis_client import connect
from services.common.scripts import Scripts

NOON = 1_764_072_000.0  # 2025-11-25T12:00:00Z


def test_day_is_utc_and_prices_are_per_thousand_tokens() -> None:
    assert utc_day(NOON) == "2025-11-25"
    assert Prices(0.5, 1.5).cost(2000, 1000) == 2.5


async def test_concurrent_replicas_never_reserve_past_the_budget(redis: Redis) -> None:
    url = redis.connection_pool.connection_kwargs
    clients = [
        connect(f"redis://{url['host']}:{url['port']}/0") for _ in range(4)
    ]  # four replicas, each its own connection pool
    try:
        budgets = [Budget(c, Scripts(c), 1.0, lambda: NOON) for c in clients]
        grants = await asyncio.gather(*(budgets[i % 4].reserve(0.03) for i in range(100)))
    finally:
        for client in clients:
            await client.aclose()
    assert sum(1 for g in grants if g is not None) == 33
    assert float(await redis.get(keys.spend("2025-11-25"))) <= 1.0
    assert 0 < await redis.ttl(keys.spend("2025-11-25")) <= 3 * 86_400


async def test_settling_replaces_the_reservation_by_the_actual_cost(redis: Redis) -> None:
    budget = Budget(redis, Scripts(redis), 1.0, lambda: NOON)
    reservation = await budget.reserve(0.6)
    assert reservation is not None and await budget.reserve(0.6) is None
    await budget.settle(reservation, 0.1)
    assert abs(await budget.spent_today() - 0.1) < 1e-9
    assert await budget.reserve(0.6) is not None


async def test_zero_budget_allows_no_spend(redis: Redis) -> None:
    assert await Budget(redis, Scripts(redis), 0.0, lambda: NOON).reserve(0.000001) is None
