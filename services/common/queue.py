"""The analysis job queue in Redis: priority order, leases, idempotent completion.

Score = priority * 10^12 - enqueue time (ms with a microsecond fraction, Redis's
clock): critical before warning before info, first-in first-out within a level. A claim
moves the job to the lease set with a deadline; a job whose lease expires goes back to
the queue (or to the dead letters after `max_attempts`). Completing publishes the job's
result event and deletes the job in one script, and only for the attempt that holds the
lease, so a job has exactly one result even when a worker that lost its lease finishes
late.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from services.common import keys
from services.common.events import DEFAULT_EVENTS_MAXLEN, Event, stream_fields
from services.common.scripts import Scripts

PRIORITY_SCALE = 10**12


def job_score(priority: int, enqueue_ms: int) -> int:
    """The queue score of a job: higher is claimed first."""
    return priority * PRIORITY_SCALE - enqueue_ms


def alert_job_id(episode_id: str, severity: int) -> str:
    """One job per episode and severity level it reaches; resends map to the same id."""
    return f"alert:{episode_id}:{severity}"


@dataclass(frozen=True, slots=True)
class Claim:
    job_id: str
    body: dict[str, Any]
    attempt: int
    priority: int


class JobQueue:
    """Claim and complete jobs of `vigil:queue` (enqueueing happens in ingest's commit)."""

    def __init__(
        self,
        redis: Redis,
        scripts: Scripts,
        *,
        lease_ms: int = 30_000,
        max_attempts: int = 5,
        dead_cap: int = 10_000,
        events_maxlen: int = DEFAULT_EVENTS_MAXLEN,
    ) -> None:
        self.redis = redis
        self.scripts = scripts
        self.lease_ms = lease_ms
        self.max_attempts = max_attempts
        self.dead_cap = dead_cap
        self.events_maxlen = events_maxlen

    async def claim(self) -> Claim | None:
        reply = await self.scripts.queue_claim(
            keys=[keys.QUEUE, keys.QUEUE_LEASES, keys.QUEUE_DEAD],
            args=[self.lease_ms, keys.JOB_PREFIX, self.max_attempts, self.dead_cap],
        )
        if not reply:
            return None
        job_id, body, attempt, priority = reply
        return Claim(str(job_id), json.loads(body), int(attempt), int(priority))

    async def complete(self, claim: Claim, event: Event | None) -> bool:
        """Publish `event` and drop the job; False if the lease was lost meanwhile."""
        fields = stream_fields(event) if event is not None else None
        args: list[str | int] = [claim.job_id, claim.attempt, self.events_maxlen]
        if fields is None:
            args += ["", "", "", ""]
        else:
            args += [fields["kind"], fields["device"], fields["sev"], fields["data"]]
        done = await self.scripts.queue_complete(
            keys=[keys.QUEUE_LEASES, keys.job(claim.job_id), keys.EVENTS], args=args
        )
        return bool(done)

    async def depth(self) -> int:
        return int(await self.redis.zcard(keys.QUEUE))
