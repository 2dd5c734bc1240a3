"""L1 (LRU with TTL on a driven clock) and L2 (Redis, TTL by severity)."""

from __future__ import annotations

from redis.asyncio import Redis

from services.analyzer.cache import Cached, InsightCache, L1Cache
from services.analyzer.diagnose import cached_outcome
from services.common import keys

VALUE = Cached({"diagnosis": "d"}, 1.0, "alert:e:3")
TTL = {1: 3600.0, 2: 1800.0, 3: 300.0}


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def test_l1_evicts_the_least_recently_used() -> None:
    l1 = L1Cache(2, Clock())
    l1.put("a", VALUE, 10)
    l1.put("b", VALUE, 10)
    assert l1.get("a") is VALUE  # a is now more recent than b
    l1.put("c", VALUE, 10)
    assert (l1.get("a"), l1.get("b"), l1.get("c")) == (VALUE, None, VALUE)


def test_l1_entries_expire_on_the_clock() -> None:
    clock = Clock()
    l1 = L1Cache(10, clock)
    l1.put("a", VALUE, 5)
    clock.now = 4.99
    assert l1.get("a") is VALUE
    clock.now = 5.0
    assert l1.get("a") is None and len(l1) == 0


async def test_l2_ttl_follows_severity_and_a_hit_fills_l1(redis: Redis) -> None:
    writer = InsightCache(redis, L1Cache(10), TTL)
    await writer.put("crit", VALUE, 3)
    await writer.put("info", VALUE, 1)
    assert 299_000 < await redis.pttl(keys.cache("crit")) <= 300_000
    assert 3_599_000 < await redis.pttl(keys.cache("info")) <= 3_600_000
    reader = InsightCache(redis, L1Cache(10), TTL)  # another replica: empty L1
    assert reader.get_l1("crit") is None
    found = await reader.get("crit")
    assert found is not None and found.insight == VALUE.insight
    assert reader.get_l1("crit") == found  # no Redis round trip next time
    clock = Clock()
    clock.now = found.expires_at - 1
    late = InsightCache(redis, L1Cache(10, clock), TTL, wall_clock=clock)
    assert await late.get("crit") == found
    clock.now += 1  # L1 keeps it no longer than Redis does
    assert late.get_l1("crit") is None
    assert await reader.get("missing") is None


async def test_unreadable_l2_entry_is_a_miss(redis: Redis) -> None:
    await redis.set(keys.cache("bad"), "{not json")
    assert await InsightCache(redis, L1Cache(10), TTL).get("bad") is None


def test_the_same_answer_cached_again_is_the_same_insight() -> None:
    """The job publishes its full diagnosis only when it differs from the quick insight
    (services/analyzer/jobs.py); the pattern's entry may expire in between and the model
    give the same answer again: one insight, not two. A different answer is a new one."""
    first = Cached({"diagnosis": "d", "urgency": "warning"}, 1.0, "alert:e:3")
    again = Cached({"urgency": "warning", "diagnosis": "d"}, 9.0, "alert:f:3", expires_at=99.0)
    other = Cached({"diagnosis": "e", "urgency": "warning"}, 9.0, "alert:f:3")
    mark = cached_outcome("p", first).mark
    assert cached_outcome("p", again).mark == mark
    assert cached_outcome("p", other).mark != mark
    assert cached_outcome("q", first).mark != mark
