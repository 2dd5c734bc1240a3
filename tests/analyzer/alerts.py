"""Alerts as ingest makes them: a detector episode change through the shared `plan` and
`Committer`, so the alert event and its job land in Redis in one script, exactly as in
production."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
import uuid
from typing import Any

from redis.asyncio import Redis
from vigil.v1 import common_pb2, detector_pb2

from services.common import keys
from services.common.alerts import plan
from services.common.scripts import Scripts
from services.common.timeconv import from_seconds
from services.ingest.commit import Committer

_seq = itertools.count(1)
NAMES = {1: "info", 2: "warning", 3: "critical"}


async def raise_alert(
    redis: Redis,
    device_id: str = "press-7",
    sensor: str = "temperature",
    value: float = 97.2,
    *,
    severity: int = 3,
    threshold: float = 95.0,
    labels: dict[str, str] | None = None,
    episode_id: str | None = None,
    escalated: bool = False,
) -> tuple[str, str]:
    """Commit one opened (or escalated) episode; returns (episode id, job id)."""
    episode = episode_id or uuid.uuid4().hex
    now = time.time()
    side = "above" if value >= threshold else "below"
    verdict = common_pb2.Verdict(
        device_id=device_id,
        sensor=sensor,
        time=from_seconds(now),
        value=value,
        score=0.9,
        severity=severity,
        reasons=[f"value {value:g} {side} {NAMES[severity]} threshold {threshold:g}"],
        episode_id=episode,
    )
    change = detector_pb2.EpisodeChange(
        kind=detector_pb2.EpisodeChange.ESCALATED
        if escalated
        else detector_pb2.EpisodeChange.OPENED,
        episode_id=episode,
        device_id=device_id,
        sensor=sensor,
        severity=severity,
        verdict=verdict,
        started=from_seconds(now),
    )
    events, jobs = plan(labels or {}, [change])
    async with Committer(redis, Scripts(redis), 100_000) as committer:
        await committer.apply(device_id, next(_seq), events, jobs)
    return episode, jobs[0][0]


async def events(redis: Redis, kind: str | None = None) -> list[tuple[str, dict[str, Any]]]:
    """(stream id, event) of every event, oldest first."""
    entries = await redis.xrange(keys.EVENTS)
    found = [(entry_id, json.loads(fields["data"])) for entry_id, fields in entries]
    return [(i, e) for i, e in found if kind is None or e["kind"] == kind]


async def wait_events(
    redis: Redis, count: int, kind: str | None = None, timeout_s: float = 10.0, **match: Any
) -> list[dict[str, Any]]:
    """Block on the stream until `count` matching events exist; returns them."""
    deadline = time.monotonic() + timeout_s
    last = "0-0"
    seen: list[dict[str, Any]] = []
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"{len(seen)} of {count} events: {seen}")
        reply = await redis.xread({keys.EVENTS: last}, block=max(1, int(min(remaining, 1) * 1000)))
        for _stream, entries in reply or ():
            for entry_id, fields in entries:
                last = entry_id
                event = json.loads(fields["data"])
                if (kind is None or event["kind"] == kind) and all(
                    event.get(k) == v for k, v in match.items()
                ):
                    seen.append(event)
        if len(seen) >= count:
            return seen


async def until(check: Any, timeout_s: float = 10.0, what: str = "condition") -> None:
    """Poll an async predicate (for states that publish no event, e.g. a job that
    completed silently) every 10 ms, failing after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not await check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not reached in {timeout_s} s")
        await asyncio.sleep(0.01)


async def job_done(redis: Redis, job_id: str, timeout_s: float = 10.0) -> None:
    async def gone() -> bool:
        return not await redis.exists(keys.job(job_id))

    await until(gone, timeout_s, f"job {job_id} done")


async def jobs_done(redis: Redis, job_ids: list[str], timeout_s: float = 30.0) -> None:
    async def all_gone() -> bool:
        return int(await redis.exists(*(keys.job(j) for j in job_ids))) == 0

    await until(all_gone, timeout_s, f"{len(job_ids)} jobs done")
