"""Quick insights: every alert gets one within milliseconds, right after it.

A consumer group on `vigil:events` hands each alert event (opened or escalated) to
exactly one replica, which answers from the cache (L1, L2) or the built-in analyzer,
never the model or the queue, and acknowledges the entry after publishing. The insight
is published once per alert job (script quick_publish.lua): when a worker claims the
job before the quick path saw the alert, the worker publishes it, and the quick path
then publishes nothing. So the quick insight is always the first after its alert, and a
job's deeper insight always follows it and supersedes it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any

from redis.asyncio import Redis

from services.analyzer import metrics
from services.analyzer.diagnose import Diagnoser
from services.analyzer.groups import Entry, GroupReader
from services.analyzer.insight import insight_event
from services.common import keys
from services.common import metrics as common_metrics
from services.common.cancel import Background, cancelled
from services.common.events import SEVERITY_BY_NAME, decode, stream_fields
from services.common.queue import alert_job_id
from services.common.scripts import Scripts

log = logging.getLogger(__name__)

GROUP = "analyzer-quick"
MARK_TTL_S = 86_400
STALE_MS = 10_000
FORGET_CONSUMERS_MS = 3_600_000


def alert_job(alert: Mapping[str, Any]) -> str | None:
    """The id of the analysis job an alert event caused, if it caused one."""
    if alert.get("state") not in ("opened", "escalated"):
        return None
    episode = alert.get("episode_id")
    level = SEVERITY_BY_NAME.get(str(alert.get("severity")))
    if not isinstance(episode, str) or not episode or level is None:
        return None
    return alert_job_id(episode, level)


class QuickInsights:
    def __init__(
        self, redis: Redis, scripts: Scripts, diagnoser: Diagnoser, events_maxlen: int
    ) -> None:
        self.redis = redis
        self.scripts = scripts
        self.diagnoser = diagnoser
        self.events_maxlen = events_maxlen

    async def publish(self, job_id: str, alert: Mapping[str, Any]) -> str:
        """Publish the job's quick insight unless it was; returns its mark."""
        existing = await self.redis.get(keys.quick_insight(job_id))
        if existing is not None:
            return str(existing)
        outcome = await self.diagnoser.quick(alert)
        fields = stream_fields(insight_event(job_id, alert, outcome))
        published, mark = await self.scripts.quick_publish(
            keys=[keys.quick_insight(job_id), keys.EVENTS],
            args=[
                outcome.mark,
                MARK_TTL_S,
                self.events_maxlen,
                fields["kind"],
                fields["device"],
                fields["sev"],
                fields["data"],
            ],
        )
        if int(published):
            metrics.QUICK_INSIGHTS.labels(outcome.source).inc()
            common_metrics.EVENTS_PUBLISHED.labels("insight").inc()
        return str(mark)


class QuickResponder:
    """The consumer-group loop that turns alert events into quick insights."""

    def __init__(self, quick: QuickInsights, reader: GroupReader) -> None:
        self.quick = quick
        self.reader = reader
        self._loop = Background()

    async def start(self) -> None:
        await self.reader.ensure()
        self._loop.start(self._run(), "quick-insights")

    async def stop(self) -> None:
        await self._loop.stop()

    async def _run(self) -> None:
        next_sweep = 0.0
        while not self._loop.stopping:  # see services.common.cancel.Background
            try:
                if time.monotonic() >= next_sweep:
                    next_sweep = time.monotonic() + STALE_MS / 1000
                    await self.handle(await self.reader.stale(STALE_MS, 100))
                    await self.reader.forget_idle_consumers(FORGET_CONSUMERS_MS)
                await self.handle(await self.reader.read(100, block_ms=1000))
            # Redis hiccup: log, count, back off, carry on (a stray cancellation too).
            except (asyncio.CancelledError, Exception) as exc:
                if cancelled(exc):
                    raise
                common_metrics.ERRORS.labels("analyzer", "quick").inc()
                log.exception("quick insight loop failed")
                await asyncio.sleep(1.0)

    async def handle(self, entries: list[Entry]) -> None:
        done: list[str] = []
        for entry_id, fields in entries:
            started = time.perf_counter()
            if fields.get("kind") == "alert":
                try:
                    alert = decode(fields)
                except (ValueError, KeyError):
                    alert = {}
                job_id = alert_job(alert) if isinstance(alert, dict) else None
                if job_id is None:
                    log.debug("alert event without a job", extra={"entry": entry_id})
                if job_id is not None:
                    await self.quick.publish(job_id, alert)
                    metrics.QUICK_SECONDS.observe(time.perf_counter() - started)
            done.append(entry_id)
        await self.reader.ack(done)
