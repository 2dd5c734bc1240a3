"""Rate limiter accuracy: calls admitted by the shared token buckets against the
configured requests per minute, with 8 replicas as separate processes.

Each replica (`python -m bench.ratelimit replica ...`) runs the analyzer's limits as
the analyzer builds them (`services.analyzer.llm.limits`: requests and tokens taken
together, buckets `VIGIL_LLM_BURST_SECONDS` deep, the analyzer's retry jitter) with
4 callers (the analyzer's default concurrency) that ask again as soon as they are
admitted, so the limit is always what holds them back. All start at one agreed
instant; each prints the wall-clock times it was admitted. As in
`tests/analyzer/test_replicas.py`, what counts is what the shared limit admitted: the
steady rate (after the first seconds, whose full bucket is the documented burst)
against the configured rate, and the busiest window against the documented bound
(limit + burst).
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import json
import sys
import time
from collections.abc import Callable

from bench.procs import cluster
from bench.report import Figure, Target
from bench.size import Size
from services.analyzer.llm import limits
from services.analyzer.settings import AnalyzerSettings
from services.common.ratelimit import RateLimiter
from services.common.redis_client import connect
from services.common.scripts import Scripts

STAGE = "ratelimit"
REPLICAS = 8
CALLERS = 4
RPM = 1200.0  # 20 requests a second for the 8 replicas together
BURST_S = 1.0  # the default VIGIL_LLM_BURST_SECONDS
TOKENS = 600  # estimated tokens per call; the token limit is set not to bind
SETTLE_S = 2.0  # the first seconds spend the full bucket (the burst); then steady


def _settings(redis_url: str) -> AnalyzerSettings:
    return AnalyzerSettings.from_env(
        {
            "REDIS_URL": redis_url,
            "VIGIL_LLM_REQUESTS_PER_MINUTE": str(RPM),
            "VIGIL_LLM_TOKENS_PER_MINUTE": str(RPM * TOKENS * 100),
            "VIGIL_LLM_BURST_SECONDS": str(BURST_S),
        }
    )


async def replica(redis_url: str, start_at: float, seconds: float) -> list[float]:
    """Admission times of this replica's callers between start_at and start_at + seconds."""
    settings = _settings(redis_url)
    requests, tokens = limits(settings.llm)
    redis = connect(redis_url)
    limiter = RateLimiter(redis, Scripts(redis), jitter=0.2)  # as the analyzer builds it
    admitted: list[float] = []
    end = start_at + seconds

    async def caller() -> None:
        while (now := time.time()) < end:
            try:
                await limiter.acquire([(requests, 1), (tokens, TOKENS)], max(0.01, end - now))
            except Exception:  # the wait would pass the end of the run: done
                return
            at = time.time()
            if at < end:
                admitted.append(at)

    await asyncio.sleep(max(0.0, start_at - time.time()))  # the agreed start
    try:
        await asyncio.gather(*(caller() for _ in range(CALLERS)))
    finally:
        await redis.aclose()
    return admitted


def busiest(times: list[float], window: float) -> int:
    ordered = sorted(times)
    return max(
        (bisect.bisect_left(ordered, t + window) - i for i, t in enumerate(ordered)), default=0
    )


async def run(size: Size, progress: Callable[[str], None]) -> list[Figure]:
    seconds, window = size.pick((30.0, 10.0), (6.0, 4.0), (SETTLE_S + 1.0, 1.0))
    progress(f"ratelimit: {REPLICAS} replica processes x {CALLERS} callers for {seconds:g} s")
    async with cluster() as running:
        start_at = time.time() + 3.0  # time for every replica to import and connect
        procs = [
            await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bench.ratelimit",
                "replica",
                running.redis.url,
                str(start_at),
                str(seconds),
                stdout=asyncio.subprocess.PIPE,
            )
            for _ in range(REPLICAS)
        ]
        outputs = await asyncio.gather(*(p.communicate() for p in procs))
        if any(p.returncode for p in procs) or time.time() < start_at + seconds:
            raise RuntimeError("a rate limiter replica failed")
    times = sorted(t for out, _ in outputs for t in json.loads(out))
    steady = [t for t in times if t >= start_at + SETTLE_S]
    steady_per_min = len(steady) / (seconds - SETTLE_S) * 60
    bound = RPM * window / 60 + RPM * BURST_S / 60  # limit + burst, as documented
    params = {
        "replicas": REPLICAS,
        "callers_per_replica": CALLERS,
        "configured_rpm": RPM,
        "burst_seconds": BURST_S,
        "seconds": seconds,
        "admitted": len(times),
        "replicas_are": "processes",
    }
    return [
        Figure(
            STAGE,
            f"admitted per minute, steady (after the first {SETTLE_S:g} s)",
            steady_per_min,
            "requests/min",
            RPM,
            "configured requests per minute",
            Target("<=", 1.02, "ratio"),
            params,
        ),
        Figure(
            STAGE,
            f"admitted in the busiest {window:g} s window (with the burst)",
            float(busiest(times, window)),
            "requests",
            bound,
            f"limit x {window:g} s + burst (the documented bound)",
            Target("<=", 1.0, "ratio"),
            params,
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ratelimit")
    sub = parser.add_subparsers(dest="command", required=True)
    rep = sub.add_parser("replica", help="one replica (started by the benchmark)")
    rep.add_argument("redis_url")
    rep.add_argument("start_at", type=float)
    rep.add_argument("seconds", type=float)
    args = parser.parse_args(argv)
    admitted = asyncio.run(replica(args.redis_url, args.start_at, args.seconds))
    print(json.dumps(admitted))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
