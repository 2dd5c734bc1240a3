"""Bookkeeping of load and overload runs: a fleet whose rate can change while it runs,
memory samples of every service, the caps Redis must stay within, the analyzer's shed
jobs, and Prometheus figures read from a service's metrics port.

Only reads: nothing here changes the system under test beyond what devices send.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import aiohttp
from redis.asyncio import Redis

from services.common import keys
from services.common.queue import level_bounds
from services.simulator.device import DeviceRefused
from tests.support.cluster import Cluster
from tests.support.fleet import Fleet, row_key

MB = 1024 * 1024


class LoadFleet(Fleet):
    """The chaos fleet, whose devices follow `set_rate` at their next batch, so the
    offered load can be raised and lowered while they stream."""

    async def _send(self, device_id: str) -> None:
        device, machine, ledger = self.devices[device_id], self.machines[device_id], \
            self.ledger[device_id]  # fmt: skip
        await asyncio.sleep(machine.rng.random() / self.rate)  # spread over a period
        next_at = time.monotonic()
        while self._sending:
            readings = machine.tick(time.time())
            seq = device.next_seq
            ledger.sent[seq] = [row_key(r) for r in readings]
            try:
                given = await device.send(readings)
            except DeviceRefused as exc:
                ledger.refused = str(exc)
                del ledger.sent[seq]
                return
            assert given == seq
            period = 1.0 / self.rate
            next_at = max(next_at + period, time.monotonic() - period)
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))

    @property
    def acks(self) -> int:
        return self._acks

    def windows(self) -> list[int]:
        """Every window any device was given, in order per device, all devices."""
        return [w for device in self.devices.values() for w in device.stats.flows]

    def anomalous_readings(self) -> int:
        return sum(len(d.stats.anomalies) for d in self.devices.values())


def rss_bytes(pid: int) -> int:
    """The process's resident set size now (0 once it is gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


@dataclass
class Memory:
    """Resident memory of every service, sampled while a run goes on."""

    samples: dict[str, list[int]] = field(default_factory=dict)

    def sample(self, stack: Cluster) -> None:
        for name, service in stack.services.items():
            service.sample_rss()
            if service.runs and service.current.process.returncode is None:
                rss = rss_bytes(service.current.process.pid)
                self.samples.setdefault(name, []).append(rss)

    def growth(self, name: str) -> tuple[int, int]:
        """(highest RSS in the first half of the run, highest in the second half)."""
        values = self.samples.get(name, [])
        half = len(values) // 2
        return max(values[:half] or [0]), max(values[half:] or [0])

    def line(self, stack: Cluster) -> str:
        parts = []
        for name, service in stack.services.items():
            first, second = self.growth(name)
            parts.append(
                f"{name} {service.peak_rss / MB:.0f} MB (first half {first / MB:.0f}, "
                f"second {second / MB:.0f})"
            )
        return "  peak RSS: " + ", ".join(parts)


async def sample_for(stack: Cluster, memory: Memory, seconds: float, every_s: float) -> None:
    """Sample memory every `every_s` for `seconds` (the run's length: a clock, not a sync)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        memory.sample(stack)
        await asyncio.sleep(min(every_s, max(0.0, end - time.monotonic())))
    memory.sample(stack)


@dataclass
class RedisSize:
    events: int = 0
    history_longest: int = 0
    seen_largest: int = 0
    queue: int = 0
    queue_critical: int = 0
    dead: int = 0
    keys: int = 0
    used_memory: int = 0

    def line(self) -> str:
        return (
            f"  Redis: events {self.events}, longest history {self.history_longest}, largest "
            f"seen set {self.seen_largest}, queue {self.queue} ({self.queue_critical} critical),"
            f" dead {self.dead}, keys {self.keys}, used memory {self.used_memory / MB:.1f} MB"
        )


async def redis_size(redis: Redis, device_ids: list[str]) -> RedisSize:
    size = RedisSize()
    size.events = await redis.xlen(keys.EVENTS)
    for device_id in device_ids:
        size.history_longest = max(size.history_longest, await redis.xlen(keys.history(device_id)))
        size.seen_largest = max(size.seen_largest, await redis.zcard(keys.seen(device_id)))
    size.queue = await redis.zcard(keys.QUEUE)
    lo, hi = level_bounds(3, time.time() * 1000)
    size.queue_critical = await redis.zcount(keys.QUEUE, lo, hi)
    size.dead = await redis.llen(keys.QUEUE_DEAD)
    size.keys = await redis.dbsize()
    info = cast(dict[str, Any], await redis.info("memory"))
    size.used_memory = int(info["used_memory"])
    return size


async def shed_jobs(redis: Redis) -> dict[str, int]:
    """Job id -> priority of every job the queue bound shed."""
    entries = cast(list[tuple[str, dict[str, str]]], await redis.xrange(keys.QUEUE_SHED))
    return {fields["id"]: int(fields["priority"]) for _, fields in entries}


async def scrape(http: aiohttp.ClientSession, url: str) -> dict[str, float]:
    """Every sample of a Prometheus text page: 'name{labels}' -> value."""
    async with http.get(url) as response:
        text = await response.text()
    samples: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


def total(samples: Mapping[str, float], name: str, **labels: str) -> float:
    """Sum of `name`'s samples whose labels include `labels`."""
    wanted = [f'{k}="{v}"' for k, v in labels.items()]
    found = 0.0
    for key, value in samples.items():
        base, _, rest = key.partition("{")
        if base == name and all(w in rest for w in wanted):
            found += value
    return found


def metrics_url(stack: Cluster, name: str) -> str:
    return f"http://127.0.0.1:{stack.services[name].metrics_port}/metrics"


def dumps(figures: dict[str, Any]) -> str:
    return json.dumps(figures, sort_keys=True, default=str)
