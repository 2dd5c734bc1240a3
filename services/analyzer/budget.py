"""The daily LLM budget, shared by every replica: `vigil:spend:{UTC date}`.

Before a model call its worst-case cost (estimated prompt tokens plus the maximum output
tokens, at the configured prices) is reserved in one Lua step that refuses to pass the
budget; after the call the reservation is settled to the actual cost from the usage the
provider reports. So the recorded spend never passes the budget, and dashboards reading
the key see today's spend (including calls in flight). Keys expire after three days.
It never decides what to do when the budget is reached; the model client does.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from redis.asyncio import Redis

from services.common import keys
from services.common.scripts import Scripts

SPEND_TTL_S = 3 * 86_400


@dataclass(frozen=True, slots=True)
class Prices:
    input_per_1k: float
    output_per_1k: float

    def cost(self, prompt_tokens: float, completion_tokens: float) -> float:
        return (prompt_tokens * self.input_per_1k + completion_tokens * self.output_per_1k) / 1000


@dataclass(frozen=True, slots=True)
class Reservation:
    key: str
    amount: float


def utc_day(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%d")


class Budget:
    def __init__(
        self,
        redis: Redis,
        scripts: Scripts,
        daily_limit: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.redis = redis
        self.scripts = scripts
        self.daily_limit = daily_limit
        self.clock = clock

    async def reserve(self, amount: float) -> Reservation | None:
        """Reserve `amount` of today's budget; None when that would pass it."""
        key = keys.spend(utc_day(self.clock()))
        granted, _spent = await self.scripts.budget_reserve(
            keys=[key], args=[f"{amount:.9f}", f"{self.daily_limit:.9f}", SPEND_TTL_S]
        )
        return Reservation(key, amount) if int(granted) else None

    async def settle(self, reservation: Reservation, actual: float) -> None:
        """Replace the reservation by the actual cost (0 when the call was not billed)."""
        delta = actual - reservation.amount
        if abs(delta) > 1e-12:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.incrbyfloat(reservation.key, delta)
                pipe.expire(reservation.key, SPEND_TTL_S)
                await pipe.execute()

    async def spent_today(self) -> float:
        value = await self.redis.get(keys.spend(utc_day(self.clock())))
        return float(value) if value is not None else 0.0
