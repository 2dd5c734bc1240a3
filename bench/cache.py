"""The insight cache: L1 and L2 hit latency (p50, p99) against a bare Redis GET of the
same entry, and the hit rate on a simulated fleet's incident mix.

The mix: the simulator's machines (`services/simulator/fleet.py`: four sensors, three
sites, four models, incidents past the warning or critical level) run for five
simulated minutes through the real detector engine with the shipped rules; each
episode change becomes its alert and analysis job through the shared `plan`, exactly
as ingest makes them. Two analyzer replicas (each its own L1, one shared L2 in Redis)
take the jobs in turn; a miss is answered (as the model would) and cached. Five
minutes is the shortest TTL (critical), so no entry expires in the simulated span.
Baseline: the same cache keyed by device, sensor and severity instead of the pattern.
"""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from redis.asyncio import Redis

from bench.report import Figure
from bench.size import Size
from bench.stats import percentile
from services.analyzer.cache import Cached, InsightCache, L1Cache
from services.analyzer.pattern import pattern_of
from services.common import keys
from services.common.alerts import plan
from services.common.timeconv import to_seconds
from services.detector.convert import change_message
from services.detector.engine import Detector
from services.detector.rules.parse import load
from services.simulator.fleet import SITES, Machine

STAGE = "cache"
TTL_S = {1: 3600.0, 2: 1800.0, 3: 300.0}  # the analyzer's defaults, by severity level
INSIGHT = {
    "diagnosis": "d" * 200,
    "likely_causes": ["c" * 40] * 3,
    "actions": ["a" * 40] * 3,
    "urgency": "critical",
    "confidence": 0.8,
}


async def latencies(op: Callable[[], Awaitable[object]], count: int) -> list[float]:
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        await op()
        samples.append(time.perf_counter() - started)
    return samples


async def hit_latency(redis: Redis, count: int) -> list[Figure]:
    await redis.flushall()
    warm = InsightCache(redis, L1Cache(1024), TTL_S)
    await warm.put("bench", Cached(INSIGHT, time.time(), "alert:bench:3"), 3)
    cold = InsightCache(redis, L1Cache(0), TTL_S)  # no L1: every lookup is an L2 hit
    if await warm.get("bench") is None or await cold.get("bench") is None:
        raise RuntimeError("the cache did not return what was put")
    runs: dict[str, list[float]] = {"l1": [], "l2": [], "get": []}
    ops = {
        "l1": lambda: warm.get("bench"),
        "l2": lambda: cold.get("bench"),
        "get": lambda: redis.get(keys.cache("bench")),
    }
    for _ in range(4):  # in turns, so load on the machine falls on each alike
        for name, op in ops.items():
            runs[name] += await latencies(op, count // 4)
    params = {"lookups": count, "entry_bytes": len(Cached(INSIGHT, 0.0, "x").to_json())}
    figures = []
    for level in ("l1", "l2"):
        for q in (0.5, 0.99):
            figures.append(
                Figure(
                    STAGE,
                    f"{level.upper()} hit latency p{q * 100:g}",
                    percentile(runs[level], q) * 1e6,
                    "us",
                    percentile(runs["get"], q) * 1e6,
                    f"bare Redis GET p{q * 100:g} of the same entry",
                    parameters=params,
                )
            )
    return figures


@dataclass
class Mix:
    jobs: list[tuple[float, int, dict[str, object]]]  # (simulated time, level, job body)
    readings: int


def incident_mix(machines: int, seconds: int, seed: int) -> Mix:
    """The analysis jobs a fleet's incidents cause over `seconds` simulated seconds."""
    rng = random.Random(seed)
    start = time.time() - seconds
    clock = [start]
    detector = Detector(load(None), clock=lambda: clock[0])
    fleet = [Machine(i, random.Random(rng.random()), incident_rate=0.01) for i in range(machines)]
    labels = [{"site": SITES[i % len(SITES)], "model": f"m{i % 4 + 1}"} for i in range(machines)]
    jobs = []
    readings = 0
    for tick in range(seconds):
        now = clock[0] = start + tick
        for i, machine in enumerate(fleet):
            rows = [(r.sensor, to_seconds(r.time), r.value) for r in machine.tick(now)]
            readings += len(rows)
            device = f"sim-{i:04d}"
            outcome = detector.process(device, rows, labels=labels[i], seq=tick + 1)
            if outcome.changes:
                changes = [change_message(device, c) for c in outcome.changes]
                _, planned = plan(labels[i], changes)
                jobs += [(now, level, body) for _, level, body in planned]
    return Mix(jobs, readings)


async def hit_rate(
    redis: Redis, mix: Mix, key: Callable[[dict[str, object]], str]
) -> dict[str, float]:
    """Share of jobs answered by L1, L2, or neither, with two replicas taking turns."""
    await redis.flushall()
    clock = [0.0]
    replicas = [
        InsightCache(redis, L1Cache(1024, clock=lambda: clock[0]), TTL_S, lambda: clock[0])
        for _ in range(2)
    ]
    counts = {"l1": 0, "l2": 0, "miss": 0}
    for n, (at, level, body) in enumerate(mix.jobs):
        clock[0] = at
        cache = replicas[n % 2]
        digest = key(body)
        if cache.get_l1(digest) is not None:
            counts["l1"] += 1
        elif await cache.get_l2(digest) is not None:
            counts["l2"] += 1
        else:
            counts["miss"] += 1
            await cache.put(digest, Cached(INSIGHT, at, "bench"), level)
    total = max(1, len(mix.jobs))
    return {name: count / total for name, count in counts.items()}


def pattern_key(body: dict[str, object]) -> str:
    return pattern_of(body).digest()


def device_key(body: dict[str, object]) -> str:
    return f"{body.get('device_id')}|{body.get('sensor')}|{body.get('severity')}"


async def run(redis: Redis, size: Size, progress: Callable[[str], None]) -> list[Figure]:
    progress("cache: L1 and L2 hit latency")
    figures = await hit_latency(redis, size.pick(8_000, 2_000, 300))
    machines, seconds = size.pick((1000, 300), (200, 300), (50, 60))
    progress(f"cache: incident mix of {machines} machines over {seconds} simulated seconds")
    mix = incident_mix(machines, seconds, seed=11)
    ours = await hit_rate(redis, mix, pattern_key)
    base = await hit_rate(redis, mix, device_key)
    patterns = len({pattern_key(body) for _, _, body in mix.jobs})
    params = {
        "machines": machines,
        "simulated_seconds": seconds,
        "readings": mix.readings,
        "jobs": len(mix.jobs),
        "distinct_patterns": patterns,
        "replicas": 2,
        "l1_share": round(ours["l1"], 4),
        "l2_share": round(ours["l2"], 4),
    }
    figures.append(
        Figure(
            STAGE,
            "hit rate on a fleet incident mix (L1 + L2)",
            (ours["l1"] + ours["l2"]) * 100,
            "%",
            (base["l1"] + base["l2"]) * 100,
            "same cache keyed by device, sensor and severity",
            parameters=params,
        )
    )
    return figures
