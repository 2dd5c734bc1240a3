"""A fleet of simulated machines streaming to ingest, with occasional incidents.

Each machine reports temperature, vibration, pressure and power around its own normal
level with noise and a slow daily-like wave. Now and then one sensor has an incident
(a spike past the warning or critical threshold for several readings), so the local
stack always has something to show.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from dataclasses import dataclass

from grpc import aio
from vigil.v1 import common_pb2

from services.common.auth import device_token
from services.common.timeconv import from_seconds
from services.simulator.device import Device, DeviceRefused

log = logging.getLogger(__name__)

# sensor: (normal level, noise, warning level, critical level)
SENSORS: dict[str, tuple[float, float, float, float]] = {
    "temperature": (60.0, 1.0, 85.0, 99.0),
    "vibration": (2.5, 0.3, 8.0, 13.0),
    "pressure": (5.0, 0.2, 8.0, 9.8),
    "power": (40.0, 3.0, 80.0, 95.0),
}
SITES = ("plant-north", "plant-south", "dc-east")


@dataclass
class Incident:
    sensor: str
    level: float
    remaining: int


class Machine:
    """Readings of one simulated machine, one per sensor per tick."""

    def __init__(self, index: int, rng: random.Random, incident_rate: float) -> None:
        self.rng = rng
        self.incident_rate = incident_rate
        self.phase = rng.random() * 2 * math.pi
        self.offsets = {s: rng.gauss(0, noise) for s, (_, noise, _, _) in SENSORS.items()}
        self.incident: Incident | None = None

    def tick(self, now: float) -> list[common_pb2.Reading]:
        if self.incident is None and self.rng.random() < self.incident_rate:
            sensor = self.rng.choice(list(SENSORS))
            _, _, warning, critical = SENSORS[sensor]
            level = critical if self.rng.random() < 0.4 else warning
            self.incident = Incident(sensor, level, self.rng.randint(4, 12))
        readings = []
        for sensor, (normal, noise, _, _) in SENSORS.items():
            wave = 0.02 * normal * math.sin(now / 600 + self.phase)
            value = normal + self.offsets[sensor] + wave + self.rng.gauss(0, noise)
            if self.incident is not None and self.incident.sensor == sensor:
                value = self.incident.level * (1 + abs(self.rng.gauss(0, 0.02)))
            readings.append(
                common_pb2.Reading(sensor=sensor, value=round(value, 3), time=from_seconds(now))
            )
        if self.incident is not None:
            self.incident.remaining -= 1
            if self.incident.remaining <= 0:
                self.incident = None
        return readings


async def run_fleet(
    target: str,
    device_secret_hex: str,
    devices: int,
    rate: float,
    *,
    prefix: str = "sim",
    incident_rate: float = 0.01,
    seed: int | None = None,
    duration_s: float | None = None,
) -> None:
    """Stream from `devices` machines at `rate` batches/s each until cancelled."""
    rng = random.Random(seed)
    async with aio.insecure_channel(target) as channel:
        fleet = []
        for i in range(devices):
            device_id = f"{prefix}-{i:04d}"
            labels = {"site": SITES[i % len(SITES)], "model": f"m{i % 4 + 1}"}
            device = Device(channel, device_id, device_token(device_secret_hex, device_id), labels)
            fleet.append((device, Machine(i, random.Random(rng.random()), incident_rate)))
        await asyncio.gather(*(device.start() for device, _ in fleet))
        log.info("fleet connected", extra={"devices": devices, "target": target})
        tasks = [asyncio.create_task(_stream(d, m, rate, duration_s)) for d, m in fleet]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            for device, _ in fleet:
                await device.close()


async def _stream(device: Device, machine: Machine, rate: float, duration_s: float | None) -> None:
    period = 1.0 / rate
    # Spread devices over the period so that the fleet does not send in lockstep.
    await asyncio.sleep(machine.rng.random() * period)
    start = time.monotonic()
    next_at = start
    while duration_s is None or time.monotonic() - start < duration_s:
        try:
            await device.send(machine.tick(time.time()))
        except DeviceRefused as exc:
            log.error("device refused", extra={"device_id": device.device_id, "error": str(exc)})
            return
        next_at += period
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))
