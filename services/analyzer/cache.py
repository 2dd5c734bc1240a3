"""The insight cache: L1 in process (LRU with TTL), L2 in Redis (`vigil:cache:{sha256}`,
TTL by severity), keyed by the anomaly's pattern digest (see pattern.py).

Only model answers are cached: the built-in analyzer is cheaper than a lookup. A value
is the insight with where it came from (`origin`: the job, `cached_at`, the model's
cost). This module never calls the model and never decides what to do on a miss.
"""

from __future__ import annotations

import json
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from redis.asyncio import Redis

from services.analyzer import metrics
from services.common import keys

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Cached:
    insight: dict[str, Any]
    cached_at: float
    origin: str
    #: Unix time the L2 entry expires, so a replica that reads it can keep it in L1 for
    #: the rest of its life without asking Redis for the TTL.
    expires_at: float = 0.0

    def to_json(self) -> str:
        return json.dumps(
            {
                "insight": self.insight,
                "cached_at": self.cached_at,
                "origin": self.origin,
                "expires_at": self.expires_at,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str) -> Cached:
        data = json.loads(text)
        return cls(
            dict(data["insight"]),
            float(data["cached_at"]),
            str(data["origin"]),
            float(data.get("expires_at", 0.0)),
        )


class L1Cache:
    """Least recently used entries, each with its own expiry, on an injectable clock."""

    def __init__(self, size: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.size = size
        self.clock = clock
        self._entries: OrderedDict[str, tuple[float, Cached]] = OrderedDict()

    def get(self, key: str) -> Cached | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, value = entry
        if expires <= self.clock():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return value

    def put(self, key: str, value: Cached, ttl_s: float) -> None:
        if self.size <= 0 or ttl_s <= 0:
            return
        self._entries[key] = (self.clock() + ttl_s, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


class InsightCache:
    """L1 then L2; an L2 hit fills L1 for the rest of the entry's life."""

    def __init__(
        self,
        redis: Redis,
        l1: L1Cache,
        ttl_s: Mapping[int, float],
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.redis = redis
        self.l1 = l1
        self.ttl_s = ttl_s
        self.wall_clock = wall_clock

    def get_l1(self, digest: str) -> Cached | None:
        hit = self.l1.get(digest)
        metrics.CACHE_REQUESTS.labels("l1", "hit" if hit else "miss").inc()
        return hit

    async def get_l2(self, digest: str) -> Cached | None:
        text = await self.redis.get(keys.cache(digest))
        try:
            value = None if text is None else Cached.from_json(str(text))
        except (ValueError, KeyError, TypeError):  # not ours, or an older format: a miss
            log.warning("unreadable cache entry", extra={"digest": digest})
            value = None
        if value is None:
            metrics.CACHE_REQUESTS.labels("l2", "miss").inc()
            return None
        metrics.CACHE_REQUESTS.labels("l2", "hit").inc()
        self.l1.put(digest, value, value.expires_at - self.wall_clock())
        return value

    async def get(self, digest: str) -> Cached | None:
        started = time.perf_counter()
        hit = self.get_l1(digest)
        level = "l1"
        if hit is None:
            hit = await self.get_l2(digest)
            level = "l2" if hit is not None else "miss"
        metrics.CACHE_SECONDS.labels(level).observe(time.perf_counter() - started)
        return hit

    async def put(self, digest: str, value: Cached, level: int) -> Cached:
        """Store `value` for its severity's TTL; returns it with its expiry."""
        ttl = self.ttl_s.get(level, self.ttl_s.get(1, 3600.0))
        stored = replace(value, expires_at=self.wall_clock() + ttl)
        await self.redis.set(keys.cache(digest), stored.to_json(), px=int(ttl * 1000))
        self.l1.put(digest, stored, ttl)
        return stored
