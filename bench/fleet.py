"""Benchmark devices: the reference device client (`services/simulator/device.py`: Hello,
Flow, in-flight window, resend) driven as fast as its window allows or on a schedule.

Readings are built before the clock starts (in production each device is its own
machine, so building them is not ingest's cost, and on a 2-core box it would otherwise
eat the CPU being measured). Every series moves forward in time, with normal noise
around the simulator's levels and no anomalies, so the figures are those of the
common case. Acks are time-stamped as they arrive; latency is measured from when a
batch was *due*, not when it could be written, so a stalled client is not hidden.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from grpc import aio
from vigil.v1 import ingest_pb2

from services.common.auth import device_token
from services.simulator.device import Device
from services.simulator.fleet import SENSORS

DEVICES_PER_CHANNEL = 10  # many HTTP/2 connections, as separate devices would have


def batches(
    device_index: int, count: int, size: int, *, start: float, step_s: float, seed: int
) -> list[ingest_pb2.ReadingBatch]:
    """`count` batches of `size` readings; sensors take turns, each series advancing
    `step_s` per reading of its own. Noise shrinks with the step (a sensor read 100
    times a second moves less between readings than one read every second), so no
    rule fires: the rate-of-change limits are per second."""
    rng = random.Random(seed * 1_000_003 + device_index)
    names = list(SENSORS)
    scale = min(1.0, step_s)
    levels = [(SENSORS[s][0], SENSORS[s][1] * scale) for s in names]
    out = []
    k = 0
    for _ in range(count):
        batch = ingest_pb2.ReadingBatch()
        for _ in range(size):
            i = k % len(names)
            at = start + (k // len(names)) * step_s
            level, noise = levels[i]
            reading = batch.readings.add(sensor=names[i], value=round(rng.gauss(level, noise), 3))
            reading.time.seconds = int(at)
            reading.time.nanos = int((at - int(at)) * 1e9)
            k += 1
        out.append(batch)
    return out


@dataclass
class Acks:
    """When each ack arrived, and each batch's latency from when it was due."""

    times: list[float] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    due: dict[tuple[int, int], float] = field(default_factory=dict)
    anomalies: int = 0

    def on_ack(self, device: int) -> Callable[[ingest_pb2.Ack], None]:
        def record(ack: ingest_pb2.Ack) -> None:
            now = time.perf_counter()
            self.times.append(now)
            self.anomalies += len(ack.anomalies)
            due = self.due.pop((device, ack.seq), None)
            if due is not None:
                self.latencies.append(now - due)

        return record


@dataclass
class Fleet:
    devices: list[Device]
    channels: list[aio.Channel]
    acks: Acks

    async def close(self) -> None:
        await asyncio.gather(*(d.close() for d in self.devices), return_exceptions=True)
        for channel in self.channels:
            await channel.close()


async def connect(
    target: str, secret: str, ids: Sequence[str], labels: dict[str, str] | None = None
) -> Fleet:
    """Open one stream per device id (Hello, first Flow), DEVICES_PER_CHANNEL a channel."""
    acks = Acks()
    channels: list[aio.Channel] = []
    devices: list[Device] = []
    for index, device_id in enumerate(ids):
        if index % DEVICES_PER_CHANNEL == 0:
            channels.append(aio.insecure_channel(target))
        device = Device(
            channels[-1],
            device_id,
            device_token(secret, device_id),
            labels or {},
            on_ack=acks.on_ack(index),
        )
        devices.append(device)
    fleet = Fleet(devices, channels, acks)
    try:
        for start in range(0, len(devices), 100):  # bounded concurrent Hellos
            await asyncio.wait_for(
                asyncio.gather(*(d.start() for d in devices[start : start + 100])), 60
            )
    except BaseException:
        await fleet.close()
        raise
    return fleet


async def flood(
    fleet: Fleet, work: Sequence[Sequence[ingest_pb2.ReadingBatch]], deadline: float
) -> None:
    """Each device sends its batches back to back (as fast as its window allows), until
    done or `deadline` (perf_counter); then waits for the acks of what it sent."""

    async def one(device: Device, mine: Sequence[ingest_pb2.ReadingBatch]) -> None:
        for batch in mine:
            if time.perf_counter() > deadline:
                break
            await device.send(batch.readings)
        await device.drain()

    await asyncio.gather(*(one(d, w) for d, w in zip(fleet.devices, work, strict=True)))


async def paced(
    fleet: Fleet,
    work: Sequence[Sequence[ingest_pb2.ReadingBatch]],
    per_device_rate: float,
    seconds: float,
    rng: random.Random,
) -> None:
    """Each device sends `per_device_rate` batches/s on a schedule (spread over the
    period), for `seconds`; every batch's latency counts from when it was due."""
    period = 1.0 / per_device_rate
    started = time.perf_counter()

    async def one(index: int, device: Device, mine: Sequence[ingest_pb2.ReadingBatch]) -> None:
        due = started + rng.random() * period
        for batch in mine:
            if due > started + seconds:
                break
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)  # the schedule: a device sends when it is due
            fleet.acks.due[(index, device.next_seq)] = due
            await device.send(batch.readings)
            due += period
        await device.drain()

    await asyncio.gather(
        *(one(i, d, w) for i, (d, w) in enumerate(zip(fleet.devices, work, strict=True)))
    )
