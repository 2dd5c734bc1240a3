"""Ingest, end to end: device -> ingest -> detector -> Redis commit -> ack.

A private Redis (AOF on), one detector and one ingest process (`vigil serve`, default
settings), and the reference device client in this process. For each batch size (1,
10, 100, 500 readings) a fresh set of devices sends pre-built batches as fast as the
in-flight window lets them; the rate is acked readings per second over the steady
middle of the run. Baseline: the same client and devices with batch size 1. Then, at
half the highest rate measured, devices send on a schedule and each batch's ack
latency is taken from when it was due (p50, p99). Each run reports the CPU each process
used, in cores, so the limiting part can be seen.
"""

from __future__ import annotations

import os
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from vigil.v1 import ingest_pb2

from bench import fleet
from bench.procs import Cluster, cluster, cpu_seconds
from bench.report import Figure, Target
from bench.size import Size
from bench.stats import percentile, steady_rate

STAGE = "ingest"
SIZES = (1, 10, 100, 500)
STEP_S = 0.01  # each series advances 10 ms per reading (a fast sensor)


@dataclass(frozen=True, slots=True)
class Plan:
    devices: int
    readings: dict[int, int]  # readings sent per batch size (the run may end sooner)
    max_seconds: float  # per batch size
    latency_seconds: float

    @classmethod
    def of(cls, scale: Size) -> Plan:
        return scale.pick(
            cls(50, {1: 30_000, 10: 200_000, 100: 800_000, 500: 1_200_000}, 15.0, 8.0),
            cls(20, {1: 6_000, 10: 40_000, 100: 150_000, 500: 250_000}, 4.0, 3.0),
            cls(5, {1: 500, 10: 2_000, 100: 10_000, 500: 20_000}, 1.0, 1.0),
        )


class CpuMeter:
    """Cores each process used between `start` and `stop`."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.before: dict[str, float] = {}
        self.at = 0.0

    def start(self) -> None:
        self.before = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        self.at = time.perf_counter()

    def stop(self) -> dict[str, float]:
        wall = time.perf_counter() - self.at
        return {
            name: round((cpu_seconds(pid) - self.before[name]) / wall, 2)
            for name, pid in self.pids.items()
        }


@dataclass(frozen=True, slots=True)
class Measured:
    rate: float  # acked readings/s, steady middle
    latencies: list[float]  # due -> ack, paced runs only
    cpu: dict[str, float]
    batches: int
    anomalies: int  # anomalous readings the acks reported (the data is normal: ~0)


async def _measure(
    running: Cluster,
    size: int,
    work: list[list[ingest_pb2.ReadingBatch]],
    meter: CpuMeter,
    send: Callable[[fleet.Fleet], Awaitable[None]],
) -> Measured:
    ids = [f"bench-{size}-{uuid.uuid4().hex[:8]}-{d:03d}" for d in range(len(work))]
    connected = await fleet.connect(
        running.services["ingest"].grpc_addr, running.device_secret, ids
    )
    try:
        meter.start()
        await send(connected)
        cpu = meter.stop()
    finally:
        await connected.close()
    acks = connected.acks
    return Measured(
        steady_rate(acks.times, size), acks.latencies, cpu, len(acks.times), acks.anomalies
    )


async def max_rate(running: Cluster, plan: Plan, size: int, meter: CpuMeter) -> Measured:
    """Every device sends back to back, as fast as its window allows."""
    per_device = max(1, plan.readings[size] // (plan.devices * size))
    start = time.time() - 3_600.0  # in the past: within ingest's one-day window
    work = [
        fleet.batches(d, per_device, size, start=start, step_s=STEP_S, seed=size)
        for d in range(plan.devices)
    ]
    deadline = time.perf_counter() + plan.max_seconds
    return await _measure(running, size, work, meter, lambda f: fleet.flood(f, work, deadline))


async def paced(running: Cluster, plan: Plan, size: int, rate: float, meter: CpuMeter) -> Measured:
    """Devices send `rate` readings/s together, on a schedule; latency from when due."""
    per_device = rate / (plan.devices * size)  # batches/s per device
    count = int(per_device * plan.latency_seconds) + 2
    start = time.time() - 1_800.0
    work = [
        fleet.batches(d, count, size, start=start, step_s=STEP_S, seed=99)
        for d in range(plan.devices)
    ]
    return await _measure(
        running,
        size,
        work,
        meter,
        lambda f: fleet.paced(f, work, per_device, plan.latency_seconds, random.Random(7)),
    )


def _params(plan: Plan, size: int, m: Measured, **more: Any) -> dict[str, Any]:
    return {
        "batch_size": size,
        "devices": plan.devices,
        "max_in_flight": "ingest's default window (Flow)",
        "batches_acked": m.batches,
        "anomalous_readings": m.anomalies,
        "cpu_cores": m.cpu,
        **more,
    }


async def run(scale: Size, progress: Callable[[str], None]) -> list[Figure]:
    plan = Plan.of(scale)
    figures: list[Figure] = []
    async with cluster() as running:
        detector = await running.start("detector")
        ingest = await running.start("ingest", {"VIGIL_DETECTOR_ADDRS": detector.grpc_addr})
        meter = CpuMeter(
            {
                "ingest": ingest.pid,
                "detector": detector.pid,
                "redis": running.redis_pid,
                "client": os.getpid(),
            }
        )
        rates: dict[int, float] = {}
        for size in SIZES:
            progress(f"ingest: batch size {size}, {plan.devices} devices, as fast as acked")
            measured = await max_rate(running, plan, size, meter)
            rates[size] = measured.rate
            figures.append(
                Figure(
                    STAGE,
                    f"readings/s end to end, batch size {size}",
                    measured.rate,
                    "readings/s",
                    None if size == 1 else rates[1],
                    None if size == 1 else "the same client, batch size 1",
                    Target(">=", 100_000.0) if size == max(SIZES) else None,
                    _params(plan, size, measured),
                )
            )
        top = max(SIZES)
        figures.append(
            Figure(
                STAGE,
                f"speed-up of batch size {top} over batch size 1",
                rates[top] / rates[1],
                "x",
                target=Target(">=", 20.0),
                parameters={"batch_size": top, "devices": plan.devices},
            )
        )
        best = max(rates, key=lambda s: rates[s])
        runs: dict[int, Measured] = {}
        for size in (1, best):
            load = rates[size] / 2
            progress(f"ingest: ack latency at {load:,.0f} readings/s (half its max), batch {size}")
            runs[size] = await paced(running, plan, size, load, meter)
        for q in (0.5, 0.99):
            figures.append(
                Figure(
                    STAGE,
                    f"ack latency p{q * 100:g} at 50% of max load, batch size {best}",
                    percentile(runs[best].latencies, q) * 1e3,
                    "ms",
                    percentile(runs[1].latencies, q) * 1e3,
                    f"the same client, batch size 1 at 50% of its max, p{q * 100:g}",
                    parameters=_params(
                        plan,
                        best,
                        runs[best],
                        offered_readings_per_s=round(rates[best] / 2),
                        seconds=plan.latency_seconds,
                        baseline_offered_readings_per_s=round(rates[1] / 2),
                    ),
                )
            )
    return figures
