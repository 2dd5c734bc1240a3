"""Diagnosing an alert: L1 cache -> L2 cache -> single-flight -> the model -> cache; the
built-in analyzer whenever the model cannot answer (with a note saying why).

`quick` is the path that must take milliseconds: cache levels, else built-in, never the
model. `full` is the queued job's path. A model answer is cached under the alert's
pattern (pattern.py), so similar incidents later hit; callers that joined someone
else's call get it as a cache answer (source "cache", no cost), so spend is counted once.
Nothing here publishes or touches the queue: callers decide what to do with an Outcome.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

from services.analyzer import metrics
from services.analyzer.cache import Cached, InsightCache
from services.analyzer.insight import Outcome, builtin_outcome
from services.analyzer.llm import ModelClient
from services.analyzer.model_errors import ModelUnavailable
from services.analyzer.pattern import pattern_of
from services.analyzer.prompt import alert_messages
from services.analyzer.singleflight import SingleFlight, WaitTimedOut

log = logging.getLogger(__name__)


def cached_outcome(digest: str, value: Cached) -> Outcome:
    """A cached answer, marked by its pattern and its content: when the pattern's entry
    expires and the model gives the same answer again, a job whose quick insight came
    from the old entry does not publish that answer a second time (seen in a full
    `make chaos`: 2 of 663 jobs in the model-fault run)."""
    content = json.dumps(value.insight, sort_keys=True, separators=(",", ":"))
    mark = hashlib.sha256(content.encode()).hexdigest()[:16]
    return Outcome(dict(value.insight), "cache", 0.0, None, f"cache:{digest}:{mark}")


class Diagnoser:
    def __init__(
        self,
        cache: InsightCache,
        flights: SingleFlight[Outcome],
        model: ModelClient,
        label_keys: Sequence[str] = (),
    ) -> None:
        self.cache = cache
        self.flights = flights
        self.model = model
        self.label_keys = label_keys

    async def quick(self, alert: Mapping[str, Any]) -> Outcome:
        """A cached answer for the alert's pattern, else the built-in one. No model."""
        digest = pattern_of(alert, self.label_keys).digest()
        hit = await self.cache.get(digest)
        return cached_outcome(digest, hit) if hit is not None else builtin_outcome(alert)

    async def full(self, alert: Mapping[str, Any], origin: str) -> Outcome:
        """The best answer available: cache, else the model (once per pattern), else
        built-in. `origin` (the job id) is recorded with what gets cached."""
        pattern = pattern_of(alert, self.label_keys)
        digest = pattern.digest()
        hit = await self.cache.get(digest)
        if hit is not None:
            return cached_outcome(digest, hit)
        if not self.model.enabled:
            return builtin_outcome(alert)

        async def lookup() -> Outcome | None:
            found = await self.cache.get_l2(digest)
            return cached_outcome(digest, found) if found is not None else None

        async def compute() -> Outcome:
            try:
                answer = await self.model.ask(alert_messages(alert, pattern))
            except ModelUnavailable as exc:
                metrics.FALLBACKS.labels(exc.reason).inc()
                log.info("built-in analyzer stands in", extra={"reason": exc.note})
                return builtin_outcome(alert, exc.note)
            await self.cache.put(digest, Cached(answer.insight, time.time(), origin), pattern.level)
            return Outcome(answer.insight, "model", answer.cost, None, f"model:{origin}")

        try:
            outcome, led = await self.flights.run(digest, lookup, compute)
        except WaitTimedOut:
            metrics.FALLBACKS.labels("single_flight_timeout").inc()
            return builtin_outcome(alert, "another replica's model call is taking too long")
        if not led and outcome.source == "model":
            # Joined a call made in this process: the same answer, already paid for.
            found = await self.cache.get(digest)
            if found is not None:
                return cached_outcome(digest, found)
        return outcome
