"""What a claimed job means: an alert diagnosis or a deep analysis, and what happens to
a job that is shed or dead-lettered.

Alert job: make sure the alert's quick insight is out (it must come first), then the
full diagnosis (cache, model, built-in); an answer identical to the quick one is not
published twice, so without a model an alert gets exactly one insight. Analysis job: see
deep.py. Shed and dead analysis jobs fail their ticket, so nobody waits forever. It
never claims, completes or retries a job: the worker does.
"""

from __future__ import annotations

import json
import logging
from typing import Any, cast

from redis.asyncio import Redis

from services.analyzer.deep import DeepAnalysis
from services.analyzer.diagnose import Diagnoser
from services.analyzer.insight import insight_event
from services.analyzer.quick import QuickInsights
from services.common import keys
from services.common.events import Event
from services.common.queue import Claim

log = logging.getLogger(__name__)


class UnknownJob(ValueError):
    """A job body of a kind this analyzer does not know (sent by a newer version?)."""


class Jobs:
    def __init__(
        self, redis: Redis, diagnoser: Diagnoser, quick: QuickInsights, deep: DeepAnalysis
    ) -> None:
        self.redis = redis
        self.diagnoser = diagnoser
        self.quick = quick
        self.deep = deep

    async def run(self, claim: Claim) -> tuple[Event | None, str]:
        """The event to publish when the job completes (None: nothing new), and the
        source of its answer."""
        kind = claim.body.get("kind")
        if kind == "alert":
            return await self._alert(claim)
        if kind == "analysis":
            return await self.deep.run(claim)
        raise UnknownJob(f"unknown job kind {kind!r}")

    async def _alert(self, claim: Claim) -> tuple[Event | None, str]:
        alert = claim.body
        quick_mark = await self.quick.publish(claim.job_id, alert)
        outcome = await self.diagnoser.full(alert, claim.job_id)
        if outcome.mark == quick_mark:
            return None, outcome.source
        return insight_event(claim.job_id, alert, outcome), outcome.source

    async def dead(self, job_id: str) -> None:
        """A job went to the dead letters: say so, and fail its ticket if it has one."""
        job = cast(dict[str, str], await self.redis.hgetall(keys.job(job_id)))
        error = job.get("last_error", "")
        log.warning("job dead-lettered", extra={"job_id": job_id, "last_error": error})
        await self._fail_ticket(job.get("body"), f"analysis failed: {error}")

    async def shed(self, job_id: str, priority: str, body: str) -> None:
        log.warning("job shed by the queue bound", extra={"job_id": job_id, "priority": priority})
        await self._fail_ticket(body, "dropped: the analysis queue was full")

    async def _fail_ticket(self, body: str | None, error: str) -> None:
        try:
            data: dict[str, Any] = json.loads(body or "{}")
        except ValueError:
            return
        if isinstance(data, dict) and data.get("kind") == "analysis" and data.get("ticket"):
            await self.deep.fail(
                str(data["ticket"]), str(data.get("device_id", "")), error, publish=True
            )
