"""`python -m services.detector.evaluation.throughput`: detector readings/s on one core.

A fleet of 1,000 simulated machines (4 sensors each, the shipped default rules: their
thresholds, rate-of-change and stuck rules plus the learned model on every series)
sends batches of 100 readings. After a warm-up that takes every series past its model's
warm-up, it times (1) the engine alone (`Detector.process` on ready tuples) and (2) the
Detect edge as the gRPC servicer runs it (protobuf columns in, results and episode
messages out), without the network. One process, one thread: one core. Prints only.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import time
from typing import Any

from vigil.v1 import detector_pb2

from services.detector.engine import Detector
from services.detector.rules.parse import load
from services.detector.server import DetectorServicer

SENSORS = {"temperature": (60.0, 1.0), "vibration": (2.5, 0.3), "pressure": (5.0, 0.2),
           "power": (40.0, 3.0)}  # fmt: skip


def fleet_batches(devices: int, rounds: int, per_batch: int, seed: int) -> list[list[Any]]:
    """rounds x devices batches of (device, [(sensor, t, value), ...]) with rare spikes."""
    rng = random.Random(seed)
    per_sensor = per_batch // len(SENSORS)
    out: list[list[Any]] = []
    t = 1_700_000_000.0
    for _ in range(rounds):
        batches = []
        for d in range(devices):
            rows = []
            for k in range(per_sensor):
                at = t + k
                for sensor, (level, noise) in SENSORS.items():
                    value = level + 0.02 * level * math.sin(at / 600) + rng.gauss(0, noise)
                    if rng.random() < 1e-4:
                        value += 12 * noise
                    rows.append((sensor, at, round(value, 3)))
            batches.append([f"m-{d:04d}", rows])
        out.append(batches)
        t += per_sensor
    return out


def engine_rate(detector: Detector, rounds: list[list[Any]], seq0: int) -> float:
    readings = sum(len(rows) for batches in rounds for _, rows in batches)
    started = time.perf_counter()
    seq = seq0
    for batches in rounds:
        seq += 1
        for device, rows in batches:
            detector.process(device, rows, seq=seq)
    return readings / (time.perf_counter() - started)


def edge_rate(detector: Detector, rounds: list[list[Any]], seq0: int) -> float:
    servicer = DetectorServicer(detector)
    requests = []
    seq = seq0
    for batches in rounds:
        seq += 1
        request = detector_pb2.DetectRequest()
        for device, rows in batches:
            sensors, times, values = zip(*rows, strict=True)
            request.batches.add(
                device_id=device, seq=seq, sensors=sensors, times=times, values=values
            )
        requests.append(request)
    readings = sum(len(rows) for batches in rounds for _, rows in batches)

    async def run() -> float:
        started = time.perf_counter()
        for request in requests:
            wire = request.SerializeToString()  # what arrives, decoded as grpc would
            await servicer.Detect(detector_pb2.DetectRequest.FromString(wire), None)
        return readings / (time.perf_counter() - started)

    return asyncio.run(run())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.detector.evaluation.throughput")
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=6, help="timed batches per device")
    parser.add_argument("--batch", type=int, default=100, help="readings per batch")
    args = parser.parse_args(argv)
    detector = Detector(load(None), results_kept=4)
    warm = fleet_batches(args.devices, 2, 400, seed=1)  # 100 readings per series
    engine_rate(detector, warm, 0)
    timed = fleet_batches(args.devices, args.rounds, args.batch, seed=2)
    engine = engine_rate(detector, timed[: args.rounds // 2], 100)
    edge = edge_rate(detector, timed[args.rounds // 2 :], 200)
    print(
        f"detector, one core, {args.devices} devices x {len(SENSORS)} sensors, "
        f"batches of {args.batch}, default rules + model:\n"
        f"  engine (Detector.process):        {engine:>10,.0f} readings/s\n"
        f"  Detect edge (protobuf in and out): {edge:>10,.0f} readings/s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
