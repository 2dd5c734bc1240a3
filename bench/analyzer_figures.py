"""Analyzer figures: queue claims per second on one Redis (against the unsafe ZPOPMAX
loop as the baseline), insight cache hit latency (L1, L2; a bare Redis GET as the
baseline) and alert -> quick insight latency, each measured side by side in one run on
a private Redis (AOF on, as in production).

    .venv/bin/python -m bench.analyzer_figures [--jobs N] [--json FILE]

Bounded: about half a minute on 2 cores. Prints a table; --json writes the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from services.analyzer.cache import Cached, InsightCache, L1Cache
from services.common import keys
from services.common.embedded_redis import EmbeddedRedis
from services.common.queue import JobQueue
from services.common.redis_client import connect
from services.common.scripts import Scripts

Figure = dict[str, Any]


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def fill(redis: Redis, count: int) -> None:
    queue = JobQueue(redis, Scripts(redis))
    body = {"kind": "alert", "device_id": "d", "sensor": "temperature"}
    for start in range(0, count, 50):
        await asyncio.gather(
            *(queue.enqueue(f"j{i}", 1 + i % 3, body) for i in range(start, min(count, start + 50)))
        )


async def claims_per_second(redis: Redis, jobs: int, workers: int, complete: bool) -> float:
    await redis.flushall()
    await fill(redis, jobs)
    queue = JobQueue(redis, Scripts(redis))

    async def worker() -> None:
        while (claim := await queue.claim()) is not None:
            if complete:
                await queue.complete(claim, None)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(workers)))
    return jobs / (time.perf_counter() - started)


async def zpopmax_per_second(redis: Redis, jobs: int, workers: int) -> float:
    """The unsafe queue: a worker that dies after ZPOPMAX loses the job."""
    await redis.flushall()
    for start in range(0, jobs, 1000):
        await redis.zadd(keys.QUEUE, {f"j{i}": i for i in range(start, min(jobs, start + 1000))})

    async def worker() -> None:
        while await redis.zpopmax(keys.QUEUE):
            pass

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(workers)))
    return jobs / (time.perf_counter() - started)


async def latencies(op: Callable[[], Awaitable[object]], count: int) -> list[float]:
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        await op()
        samples.append(time.perf_counter() - started)
    return samples


async def cache_figures(redis: Redis, count: int) -> list[Figure]:
    value = Cached(
        {"diagnosis": "d" * 200, "likely_causes": ["c"] * 3, "actions": ["a"] * 3},
        time.time(),
        "alert:e:3",
    )
    ttl = {1: 3600.0, 2: 1800.0, 3: 300.0}
    warm = InsightCache(redis, L1Cache(1024), ttl)
    await warm.put("k", value, 3)
    cold = InsightCache(redis, L1Cache(0), ttl)  # no L1: every lookup is an L2 hit
    figures = []
    runs = {
        "cache L1 hit": lambda: warm.get("k"),
        "cache L2 hit": lambda: cold.get("k"),
        "baseline: redis GET": lambda: redis.get(keys.cache("k")),
    }
    for name, op in runs.items():
        samples = await latencies(op, count)
        figures.append(
            {
                "figure": name,
                "p50_us": round(percentile(samples, 0.5) * 1e6, 1),
                "p99_us": round(percentile(samples, 0.99) * 1e6, 1),
                "count": count,
            }
        )
    return figures


async def quick_figure(server: EmbeddedRedis, redis: Redis, count: int) -> Figure:
    """Alert committed (as ingest does) -> its quick insight in vigil:events."""
    from tests.analyzer.alerts import raise_alert
    from tests.support.services import running

    await redis.flushall()
    samples = []
    async with running("analyzer", {"REDIS_URL": server.url, "OPENAI_API_KEY": ""}):
        last = "$"
        for i in range(count):
            started = time.perf_counter()
            await raise_alert(redis, f"d{i % 50}")
            while True:
                reply = await redis.xread({keys.EVENTS: last}, block=2000)
                entries = [e for _s, es in reply or () for e in es]
                if not entries:
                    raise RuntimeError("no quick insight within 2 s")
                last = entries[-1][0]
                if any(fields["kind"] == "insight" for _id, fields in entries):
                    break
            samples.append(time.perf_counter() - started)
    return {
        "figure": "alert -> quick insight (builtin)",
        "p50_ms": round(percentile(samples, 0.5) * 1e3, 2),
        "p99_ms": round(percentile(samples, 0.99) * 1e3, 2),
        "count": count,
    }


async def run(jobs: int) -> list[Figure]:
    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedRedis(Path(tmp), appendonly=True)
        server.start()
        redis = connect(server.url)
        try:
            figures: list[Figure] = []
            for workers in (1, 8):
                base = await zpopmax_per_second(redis, jobs, workers)
                claim = await claims_per_second(redis, jobs, workers, complete=False)
                both = await claims_per_second(redis, jobs, workers, complete=True)
                figures.append(
                    {
                        "figure": f"queue, {workers} concurrent worker(s) in one process",
                        "claims_per_s": round(claim),
                        "claim_and_complete_per_s": round(both),
                        "baseline_zpopmax_per_s": round(base),
                        "ratio_claim_to_baseline": round(claim / base, 2),
                        "jobs": jobs,
                    }
                )
            figures += await cache_figures(redis, 5000)
            figures.append(await quick_figure(server, redis, 200))
        finally:
            await redis.aclose()
            server.stop()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    figures = asyncio.run(run(args.jobs))
    machine = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
    }
    for figure in figures:
        name = figure.pop("figure")
        print(f"{name:<52} " + ", ".join(f"{k}={v}" for k, v in figure.items()))
        figure["figure"] = name
    if args.json:
        args.json.write_text(json.dumps({"machine": machine, "figures": figures}, indent=2))


if __name__ == "__main__":
    main()
