"""`vigil bench [--quick | --smoke] [--json FILE] [--stage NAME ...]`: every stage, one report.

Runs the stages in order (in-process ones first, then those that start service
processes), each bounded in time, each on its own private Redis; shows progress on
stderr, prints the table to stdout and writes the JSON document (see
bench/report.schema.json) when asked. A stage that fails is reported with its error
and the run goes on; the exit code is then 1. Never touches anything but 127.0.0.1
and temporary folders.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import tempfile
import time
import traceback
from collections.abc import Awaitable, Callable
from pathlib import Path

from bench import cache, dashboard, detector, fanout, ingest, machine, memory, queue, ratelimit
from bench.report import Figure, document, table
from bench.size import Size
from services.cli.main import BENCH_STAGES as STAGES
from services.common.embedded_redis import EmbeddedRedis
from services.common.redis_client import connect


class Progress:
    """Timestamped progress lines on stderr."""

    def __init__(self) -> None:
        self.started = time.monotonic()

    def __call__(self, message: str) -> None:
        print(f"[{time.monotonic() - self.started:6.1f}s] {message}", file=sys.stderr, flush=True)


async def _with_redis(
    step: Callable[..., Awaitable[list[Figure]]], size: Size, progress: Progress
) -> list[Figure]:
    """Run an in-process stage against a private redis-server (AOF on)."""
    with tempfile.TemporaryDirectory(prefix="vigil-bench-") as tmp:
        server = EmbeddedRedis(Path(tmp), appendonly=True)
        await asyncio.to_thread(server.start)
        redis = connect(server.url)
        try:
            return await step(redis, size, progress)
        finally:
            await redis.aclose()
            await asyncio.to_thread(server.stop)


async def _stage(name: str, size: Size, progress: Progress) -> list[Figure]:
    if name == "detector":
        return await asyncio.to_thread(detector.run, size, progress)
    if name == "queue":
        return await _with_redis(queue.run, size, progress)
    if name == "cache":
        return await _with_redis(cache.run, size, progress)
    steps = {
        "ratelimit": ratelimit.run,
        "memory": memory.run,
        "ingest": ingest.run,
        "dashboard": dashboard.run,
        "fanout": fanout.run,
    }
    return await steps[name](size, progress)


async def run(
    stages: list[str], size: Size, progress: Progress
) -> tuple[list[Figure], dict[str, float], dict[str, str]]:
    figures: list[Figure] = []
    seconds: dict[str, float] = {}
    errors: dict[str, str] = {}
    for name in stages:
        started = time.monotonic()
        try:
            figures += await _stage(name, size, progress)
        except Exception as exc:  # one stage's failure must not cost the others' figures
            errors[name] = f"{type(exc).__name__}: {exc}"
            progress(f"{name}: FAILED: {errors[name]}")
            traceback.print_exc(file=sys.stderr)
        seconds[name] = time.monotonic() - started
        progress(f"{name}: done in {seconds[name]:.1f} s")
    return figures, seconds, errors


def main(args: argparse.Namespace) -> int:
    stages = [s for s in STAGES if args.stage is None or s in args.stage]
    size = Size.SMOKE if args.smoke else Size.QUICK if args.quick else Size.FULL
    with contextlib.suppress(ImportError):
        import uvloop  # as the services run

        uvloop.install()
    progress = Progress()
    described = machine.describe()
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    progress(f"vigil bench{size.flag}: {', '.join(stages)}")
    figures, seconds, errors = asyncio.run(run(stages, size, progress))
    described["load_average"]["end"] = machine.load_average()
    command = "vigil bench" + size.flag
    command += "".join(f" --stage {s}" for s in args.stage or ())
    doc = document(
        figures,
        machine=described,
        command=command,
        size=size.value,
        started=started,
        duration_s=time.monotonic() - progress.started,
        stages=seconds,
        errors=errors,
    )
    print(
        f"{command}: {described['cpus']} CPUs ({described['cpu_model']}), "
        f"{described['memory_bytes'] / 2**30:.0f} GiB, {described['python']}, "
        f"load {described['load_average']['start']} -> {described['load_average']['end']}, "
        f"{doc['duration_s']:.0f} s\n"
    )
    print(table(figures))
    for name, error in errors.items():
        print(f"\n{name}: FAILED: {error}")
    if args.json is not None:
        args.json.write_text(json.dumps(doc, indent=2) + "\n")
        progress(f"wrote {args.json}")
    return 1 if errors else 0
