"""Memory: resident set size (RSS, /proc) of an ingest process with 1,000 devices
connected, and of a detector process per 10,000 series.

Ingest: RSS after start (the baseline), then with 1,000 reference-client devices
connected, each having sent a few batches of 10 readings (so every session has run
all its stages). Detector: RSS after start (the baseline), then after Detect calls
have brought in each step of 10,000 series (2,500 devices x 4 sensors, 40 readings per
series, past the model's warm-up); the figure is the growth per 10,000 series, which
is how the detector's memory scales.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections.abc import Callable

from grpc import aio
from vigil.v1 import detector_pb2, detector_pb2_grpc

from bench import fleet
from bench.procs import Cluster, cluster
from bench.report import Figure, Target
from bench.size import Size
from services.simulator.fleet import SENSORS

STAGE = "memory"
MB = 1024 * 1024
SERIES_STEP = 10_000
READINGS_PER_SERIES = 40


async def ingest_rss(
    running: Cluster, devices: int, progress: Callable[[str], None]
) -> list[Figure]:
    detector = running.services["detector"]
    ingest = await running.start("ingest", {"VIGIL_DETECTOR_ADDRS": detector.grpc_addr})
    await asyncio.sleep(1.0)  # let start-up allocations settle before the baseline
    idle = ingest.rss()
    progress(f"memory: connecting {devices} devices to ingest")
    ids = [f"mem-{d:04d}" for d in range(devices)]
    connected = await fleet.connect(ingest.grpc_addr, running.device_secret, ids)
    try:
        start = time.time() - 600
        work = [fleet.batches(d, 3, 10, start=start, step_s=1.0, seed=5) for d in range(devices)]
        await fleet.flood(connected, work, time.perf_counter() + 60)
        if len(connected.acks.times) != devices * 3:
            raise RuntimeError(f"{len(connected.acks.times)} of {devices * 3} batches acked")
        loaded = ingest.rss()
    finally:
        await connected.close()
    params = {
        "devices": devices,
        "batches_per_device": 3,
        "batch_size": 10,
        "channels": len(connected.channels),
    }
    return [
        Figure(
            STAGE,
            f"ingest RSS with {devices:,} devices connected",
            loaded / MB,
            "MB",
            idle / MB,
            "ingest RSS with no device",
            Target("<", 300.0),
            params,
        ),
        Figure(
            STAGE,
            "ingest RSS per connected device",
            (loaded - idle) / devices / 1024,
            "KB",
            parameters=params,
        ),
    ]


def _request(
    first: int, count: int, seq: int, start: float, rng: random.Random
) -> detector_pb2.DetectRequest:
    request = detector_pb2.DetectRequest()
    per_sensor = READINGS_PER_SERIES // 2  # two calls bring each series its readings
    for d in range(first, first + count):
        sensors, times, values = [], [], []
        for k in range(per_sensor):
            for sensor, (level, noise, _, _) in SENSORS.items():
                sensors.append(sensor)
                times.append(start + (seq * per_sensor + k))
                values.append(round(rng.gauss(level, noise), 3))
        request.batches.add(
            device_id=f"mem-{d:05d}", seq=seq, sensors=sensors, times=times, values=values
        )
    return request


async def detector_rss(
    running: Cluster, steps: int, progress: Callable[[str], None]
) -> list[Figure]:
    detector = running.services["detector"]
    await asyncio.sleep(1.0)
    idle = detector.rss()
    devices_per_step = SERIES_STEP // len(SENSORS)
    rng = random.Random(3)
    start = time.time() - 3_600
    rss = [idle]
    async with aio.insecure_channel(detector.grpc_addr) as channel:
        stub = detector_pb2_grpc.DetectorStub(channel)
        for step in range(steps):
            progress(f"memory: detector series {(step + 1) * SERIES_STEP:,}")
            for seq in (1, 2):
                for first in range(step * devices_per_step, (step + 1) * devices_per_step, 250):
                    await stub.Detect(_request(first, 250, seq, start, rng), timeout=60)
            rss.append(detector.rss())
    growth = [(b - a) / MB for a, b in itertools.pairwise(rss)]
    params = {
        "series": steps * SERIES_STEP,
        "readings_per_series": READINGS_PER_SERIES,
        "rss_mb_by_step": [round(r / MB, 1) for r in rss],
    }
    return [
        Figure(
            STAGE,
            f"detector RSS per {SERIES_STEP:,} series",
            sum(growth) / len(growth),
            "MB",
            parameters=params,
            samples=[round(g, 2) for g in growth],
        ),
        Figure(
            STAGE,
            f"detector RSS with {steps * SERIES_STEP:,} series",
            rss[-1] / MB,
            "MB",
            idle / MB,
            "detector RSS with no series",
            parameters=params,
        ),
    ]


async def run(size: Size, progress: Callable[[str], None]) -> list[Figure]:
    async with cluster() as running:
        await running.start("detector", {"VIGIL_SNAPSHOT_SECONDS": "3600"})
        figures = await detector_rss(running, size.pick(4, 2, 1), progress)
    async with cluster() as running:
        await running.start("detector")
        figures += await ingest_rss(running, size.pick(1000, 1000, 100), progress)
    return figures
