"""The suite with fault proxies on the links between its services, and the bookkeeping
of network-fault and load runs.

`proxied` starts the cluster (tests.support.cluster) with each named link going
through a `FaultProxy`: ingest -> detector, ingest -> Redis, analyzer -> Redis,
notifier -> Redis. Tests and the checker talk to Redis directly, never through a proxy.
`Phase` records how long one fault and the recovery after it took, and what the devices
saw meanwhile. `EpisodeChecker` is the chaos checker that counts a job as answered when
its episode's diagnosis at its highest severity was published: the queue merges a job
into, or replaces it by, a higher one of the same episode (one diagnosis per episode),
so a lower job of an escalated episode rightly never gets an insight of its own.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services.common import keys
from services.simulator.device import WRITE_RACE
from tests.support.checker import Checker, Report
from tests.support.cluster import Cluster
from tests.support.faultproxy import FaultProxy
from tests.support.fleet import Fleet

LINKS = ("ingest->detector", "ingest->redis", "analyzer->redis", "notifier->redis")


def route(stack: Cluster, link: str, proxy: FaultProxy) -> None:
    """Point the link's client service at `proxy` (from its next start)."""
    client, target = link.split("->")
    env = stack.per_service.setdefault(client, {})
    if target == "redis":
        env["REDIS_URL"] = proxy.redis_url()
    elif target == "detector":
        env["VIGIL_DETECTOR_ADDRS"] = proxy.address
    else:
        raise ValueError(f"no route for {link}")


def target_of(stack: Cluster, link: str) -> str:
    target = link.split("->")[1]
    if target == "redis":
        return f"127.0.0.1:{stack.redis.port}"
    return stack.services[target].address


@asynccontextmanager
async def proxied(
    workdir: Path,
    env: Mapping[str, str] | None = None,
    per_service: Mapping[str, Mapping[str, str]] | None = None,
    links: tuple[str, ...] = LINKS,
) -> AsyncIterator[tuple[Cluster, dict[str, FaultProxy]]]:
    stack = Cluster(workdir, env, per_service)
    proxies: dict[str, FaultProxy] = {}
    try:
        for link in links:
            proxy = proxies[link] = FaultProxy.to(target_of(stack, link), link)
            await proxy.start()
            route(stack, link, proxy)
        await stack.start()
        yield stack, proxies
    finally:
        await stack.stop()
        for proxy in proxies.values():
            await proxy.stop()


@dataclass
class Phase:
    link: str
    fault: str
    held_s: float = 0.0
    recovered_s: float = 0.0  # heal -> the fleet acked batches again (and the rest caught up)
    ended: dict[str, int] = field(default_factory=dict)  # device streams ended meanwhile

    def line(self) -> str:
        ended = ", ".join(f"{k} {v}" for k, v in sorted(self.ended.items())) or "none"
        return (
            f"  {self.link:<17} {self.fault:<10} held {self.held_s:4.1f} s, recovered in "
            f"{self.recovered_s:4.1f} s, device streams ended: {ended}"
        )


def ended_since(fleet: Fleet, before: dict[str, int]) -> dict[str, int]:
    now = fleet.ended()
    return {k: v - before.get(k, 0) for k, v in now.items() if v - before.get(k, 0)}


def write_races(fleet: Fleet) -> int:
    """Device streams whose status grpcio replaced with INTERNAL because a write raced
    the end of the stream (see services.simulator.device.WRITE_RACE)."""
    return sum(device.stats.ended.get(WRITE_RACE, 0) for device in fleet.devices.values())


def retried_only(ended: dict[str, int], allowed: set[str]) -> bool:
    """Every stream ended with an `allowed` status, or with INTERNAL from a write race."""
    return set(ended) <= allowed | {WRITE_RACE}


class Clock:
    def __init__(self) -> None:
        self.started = time.monotonic()

    def __call__(self) -> float:
        return time.monotonic() - self.started


def _episode_jobs(
    events: list[tuple[str, dict[str, str]]], prefix: str
) -> tuple[dict[str, int], set[tuple[str, int]]]:
    """Per episode the highest severity it asked a diagnosis for, and the (episode,
    severity) pairs that got an insight."""
    levels = {"info": 1, "warning": 2, "critical": 3}
    wanted: dict[str, int] = {}
    answered: set[tuple[str, int]] = set()
    for _, fields in events:
        if not fields.get("device", "").startswith(prefix + "-"):
            continue
        event: dict[str, Any] = json.loads(fields["data"])
        if fields["kind"] == "alert" and event.get("state") in ("opened", "escalated"):
            level = levels.get(str(event.get("severity")), 0)
            episode = str(event["episode_id"])
            wanted[episode] = max(wanted.get(episode, 0), level)
        elif fields["kind"] == "insight" and str(event.get("job_id", "")).startswith("alert:"):
            _, episode, level = str(event["job_id"]).rsplit(":", 2)
            answered.add((episode, int(level)))
    return wanted, answered


class EpisodeChecker(Checker):
    """The checker, with jobs counted per episode at its highest severity, and a
    reading counted twice only when its value repeats too: a device that catches up
    after a stall sends batches back to back, and two of its readings may then share
    a sensor and a millisecond while being different readings."""

    async def _check_device(
        self, report: Report, device_id: str, sent: dict[int, list[Any]], acked: set[int]
    ) -> None:
        before = report.readings_duplicated
        await super()._check_device(report, device_id, sent, acked)
        rows: Counter[tuple[str, float, float]] = Counter()
        for _, fields in await self.redis.xrange(keys.history(device_id)):
            for sensor, at, value in json.loads(fields["readings"]):
                rows[(sensor, round(at, 3), value)] += 1
        report.readings_duplicated = before + sum(n - 1 for n in rows.values() if n > 1)

    #: Jobs the queue's bound shed (no insight is due for them), set by overload tests.
    excused: frozenset[str] = frozenset()

    async def _wanted(self) -> tuple[dict[str, int], set[tuple[str, int]]]:
        wanted, answered = _episode_jobs(await self._events(), self.fleet.prefix)
        wanted = {e: lv for e, lv in wanted.items() if f"alert:{e}:{lv}" not in self.excused}
        return wanted, answered

    async def _unanswered(self) -> set[str]:
        wanted, answered = await self._wanted()
        return {f"alert:{e}:{lv}" for e, lv in wanted.items() if (e, lv) not in answered}

    async def _check_events(self, report: Report) -> None:
        await super()._check_events(report)
        wanted, answered = await self._wanted()
        report.jobs = len(wanted)
        report.jobs_answered = sum((e, lv) in answered for e, lv in wanted.items())
        report.jobs_lost = report.jobs - report.jobs_answered
