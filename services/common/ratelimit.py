"""Distributed token buckets in Redis, shared by every replica.

One implementation serves the analyzer's model limits (requests and tokens per minute)
and the notifier's per-token API limits. A bucket holds at most `burst` tokens and
refills at `limit / period` on Redis's own clock (`TIME`), so replicas with skewed
clocks still agree. Several buckets are taken from atomically (one Lua script): a model
call needs a request *and* its estimated tokens, or neither.

Why burst defaults to one second's worth: in any window of `period` seconds a bucket
admits at most `burst + limit`; with burst = limit / 60 per minute that is 1.7 % above
the limit, instead of 2x with a bucket as deep as the limit.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from redis.asyncio import Redis

from services.common import keys
from services.common.errors import ResourceExhausted
from services.common.scripts import Scripts


@dataclass(frozen=True, slots=True)
class Limit:
    """`limit` units per `period_s` seconds, with bursts of at most `burst` units."""

    name: str
    limit: float
    period_s: float = 60.0
    burst: float | None = None

    def __post_init__(self) -> None:
        if self.limit <= 0 or self.period_s <= 0:
            raise ValueError(f"limit {self.name!r}: limit and period must be > 0")

    @property
    def capacity(self) -> float:
        return self.burst if self.burst is not None else max(1.0, self.limit / self.period_s)

    @property
    def rate_per_ms(self) -> float:
        return self.limit / (self.period_s * 1000.0)

    @property
    def key(self) -> str:
        return keys.rate_limit(self.name)


class RateLimiter:
    """Token buckets on Redis.

    `jitter` spreads the retries of waiters (a fraction of each wait, at random), so
    replicas that were refused together do not all come back in the same millisecond.
    `clock` (ms) drives time in tests; None means Redis's own clock.
    """

    def __init__(
        self,
        redis: Redis,
        scripts: Scripts,
        *,
        jitter: float = 0.0,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.redis = redis
        self.scripts = scripts
        self.jitter = jitter
        self.clock = clock

    def _now(self) -> str:
        return "" if self.clock is None else f"{self.clock():.3f}"

    async def try_acquire(self, costs: Sequence[tuple[Limit, float]]) -> float:
        """Take every cost at once; 0.0 when granted, else seconds until it could be."""
        args: list[float | str] = []
        for limit, cost in costs:
            args += [limit.capacity, limit.rate_per_ms, cost]
        args.append(self._now())
        granted, wait_ms, _ = await self.scripts.rate_acquire(
            keys=[limit.key for limit, _ in costs], args=args
        )
        return 0.0 if int(granted) else max(0.001, int(wait_ms) / 1000.0)

    async def acquire(self, costs: Sequence[tuple[Limit, float]], timeout_s: float) -> float:
        """Wait (at most `timeout_s`) until granted; returns the seconds waited.

        Raises ResourceExhausted with the wait still needed when the timeout would pass.
        """
        started = time.monotonic()
        while True:
            wait = await self.try_acquire(costs)
            if wait == 0.0:
                return time.monotonic() - started
            remaining = timeout_s - (time.monotonic() - started)
            if wait > remaining:
                names = ", ".join(limit.name for limit, _ in costs)
                raise ResourceExhausted(f"rate limit {names} reached", retry_after=wait)
            # The bucket refills on a clock: there is no event to await.
            await asyncio.sleep(wait * (1.0 + self.jitter * random.random()))

    async def settle(self, limit: Limit, delta: float) -> None:
        """Take `delta` more units (give back when negative), e.g. actual - estimate."""
        if delta:
            await self.scripts.rate_settle(
                keys=[limit.key], args=[limit.capacity, limit.rate_per_ms, delta, self._now()]
            )
