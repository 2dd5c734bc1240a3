"""The analysis job queue in Redis: priority order, leases, merging, a bound, aging.

Score = level * 10^12 - enqueue time (ms with a microsecond fraction, Redis's clock):
critical before warning before info, first-in first-out within a level. A job's level is
its priority until it ages (see `reap`). The rules of enqueueing (one job per episode,
the bound and which job it sheds) are the Lua library `lua/lib/enqueue.lua`, shared with
ingest's commit script.

A claim moves the job to the lease set with a deadline; the worker extends it with
`heartbeat` while it works. `reap` returns expired leases to the queue (or, after
`max_attempts` failures, to the dead letters with the last error). Completing publishes
the job's result event and deletes the job in one script, and only for the attempt that
holds the lease, so a job has exactly one result even when a worker that lost its lease
finishes late. Nothing here decides what a job means; that is the analyzer's business.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from redis.asyncio import Redis

from services.common import keys
from services.common.events import DEFAULT_EVENTS_MAXLEN, Event, stream_fields
from services.common.scripts import Scripts

PRIORITY_SCALE = 10**12
CRITICAL = 3
LEVELS = (1, 2, 3)

EnqueueOutcome = Literal["added", "exists", "merged", "shed"]
FailOutcome = Literal["retry", "dead", "released", "lost"]


def job_score(priority: int, enqueue_ms: float) -> float:
    """The queue score of a job: higher is claimed first."""
    return priority * PRIORITY_SCALE - enqueue_ms


def alert_job_id(episode_id: str, severity: int) -> str:
    """One job per episode and severity level it reaches; resends map to the same id."""
    return f"alert:{episode_id}:{severity}"


def level_bounds(level: int, now_ms: float) -> tuple[float, float]:
    """Scores of jobs at `level`: [lo, hi). Levels are 10^12 ms (31 years) apart, so the
    bounds sit half-way between them and clock skew between replicas cannot matter."""
    center = level * PRIORITY_SCALE - now_ms
    return center - PRIORITY_SCALE / 2, center + PRIORITY_SCALE / 2


@dataclass(frozen=True, slots=True)
class Claim:
    job_id: str
    body: dict[str, Any]
    attempt: int
    priority: int
    enqueued_ms: float
    level: int


@dataclass(frozen=True, slots=True)
class Reaped:
    requeued: int
    promoted: int
    dead: list[str]


class JobQueue:
    """Enqueue, claim, heartbeat, complete, fail and reap jobs of `vigil:queue`.

    `clock` (ms) drives time in tests; None means Redis's own clock, which every
    replica shares.
    """

    def __init__(
        self,
        redis: Redis,
        scripts: Scripts,
        *,
        lease_ms: int = 30_000,
        max_attempts: int = 5,
        dead_cap: int = 10_000,
        dead_ttl_s: int = 7 * 86_400,
        aging_ms: int = 300_000,
        events_maxlen: int = DEFAULT_EVENTS_MAXLEN,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.redis = redis
        self.scripts = scripts
        self.lease_ms = lease_ms
        self.max_attempts = max_attempts
        self.dead_cap = dead_cap
        self.dead_ttl_s = dead_ttl_s
        self.aging_ms = aging_ms
        self.events_maxlen = events_maxlen
        self.clock = clock

    def _now(self) -> str:
        return "" if self.clock is None else f"{self.clock():.3f}"

    async def configure(self, max_depth: int) -> None:
        """Set the bound every enqueuer applies (0 = unbounded)."""
        if max_depth > 0:
            await self.redis.hset(keys.QUEUE_CONFIG, "max_depth", max_depth)
        else:
            await self.redis.hdel(keys.QUEUE_CONFIG, "max_depth")

    async def enqueue(self, job_id: str, priority: int, body: dict[str, Any]) -> EnqueueOutcome:
        outcome = await self.scripts.queue_enqueue(
            keys=[keys.QUEUE, keys.job(job_id)],
            args=[job_id, priority, json.dumps(body), self._now(), keys.QUEUE_NOTIFY],
        )
        return outcome  # type: ignore[no-any-return]

    async def claim(self) -> Claim | None:
        reply = await self.scripts.queue_claim(
            keys=[keys.QUEUE, keys.QUEUE_LEASES], args=[self.lease_ms, keys.JOB_PREFIX, self._now()]
        )
        if not reply:
            return None
        job_id, body, attempt, priority, enqueued_ms, level = reply
        return Claim(
            str(job_id),
            json.loads(body),
            int(attempt),
            int(priority),
            float(enqueued_ms),
            int(level),
        )

    async def heartbeat(self, claim: Claim) -> bool:
        """Extend the lease; False when it was lost (stop working on the job)."""
        extended = await self.scripts.queue_heartbeat(
            keys=[keys.QUEUE_LEASES, keys.job(claim.job_id)],
            args=[claim.job_id, claim.attempt, self.lease_ms, self._now()],
        )
        return bool(extended)

    async def complete(self, claim: Claim, event: Event | None) -> bool:
        """Publish `event` and drop the job; False if the lease was lost meanwhile."""
        fields = stream_fields(event) if event is not None else None
        args: list[str | int] = [claim.job_id, claim.attempt, self.events_maxlen]
        if fields is None:
            args += ["", "", "", ""]
        else:
            args += [fields["kind"], fields["device"], fields["sev"], fields["data"]]
        done = await self.scripts.queue_complete(
            keys=[keys.QUEUE_LEASES, keys.job(claim.job_id), keys.EVENTS, keys.QUEUE], args=args
        )
        return bool(done)

    async def fail(self, claim: Claim, error: str) -> FailOutcome:
        """Count a failed attempt: back to the queue, or to the dead letters."""
        return await self._give_back(claim, error, release=False)

    async def release(self, claim: Claim) -> bool:
        """Give the job back without counting a failure (the worker is stopping)."""
        return await self._give_back(claim, "", release=True) == "released"

    async def _give_back(self, claim: Claim, error: str, *, release: bool) -> FailOutcome:
        outcome = await self.scripts.queue_fail(
            keys=[keys.QUEUE_LEASES, keys.job(claim.job_id), keys.QUEUE, keys.QUEUE_DEAD],
            args=[
                claim.job_id,
                claim.attempt,
                error[:1000],
                self.max_attempts,
                self.dead_cap,
                self.dead_ttl_s,
                "1" if release else "0",
            ],
        )
        return outcome  # type: ignore[no-any-return]

    async def reap(self, limit: int = 100) -> Reaped:
        """Return expired leases (or dead-letter them) and age waiting jobs."""
        reply = await self.scripts.queue_reap(
            keys=[keys.QUEUE, keys.QUEUE_LEASES, keys.QUEUE_DEAD],
            args=[
                keys.JOB_PREFIX,
                self.max_attempts,
                self.dead_cap,
                self.dead_ttl_s,
                self.aging_ms,
                limit,
                self._now(),
            ],
        )
        return Reaped(int(reply[0]), int(reply[1]), [str(x) for x in reply[2:]])

    async def depth(self) -> int:
        return int(await self.redis.zcard(keys.QUEUE))

    async def depth_by_level(self) -> dict[int, int]:
        """Jobs waiting at each level (after aging)."""
        now_ms = self.clock() if self.clock is not None else time.time() * 1000
        async with self.redis.pipeline(transaction=False) as pipe:
            for level in LEVELS:
                lo, hi = level_bounds(level, now_ms)
                pipe.zcount(keys.QUEUE, lo, f"({hi}")
            counts = await pipe.execute()
        return {level: int(n) for level, n in zip(LEVELS, counts, strict=True)}

    async def dead_letters(self, count: int = 100) -> list[str]:
        return [str(x) for x in await self.redis.lrange(keys.QUEUE_DEAD, 0, count - 1)]
