"""Deep analysis of a device's recent history: starting one, and the job that runs it.

`start` validates the request, records a ticket (tickets.py) and enqueues a job of kind
"analysis" with the requested priority in the same queue as alerts. The worker that
claims it reports progress (running 0.1 -> history summarised 0.5 -> done 1.0), reads
the history, summarises it per sensor, asks the model (or the built-in analyzer) and
finishes the ticket with the result, or with an error when there is nothing to analyse
or the job kept failing. It never sends raw points to the model and never caches a
device's analysis (it is about that device alone).
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from redis.asyncio import Redis

from services.analyzer import builtin, metrics
from services.analyzer.history import read_history, summarise
from services.analyzer.insight import Outcome
from services.analyzer.llm import ModelClient
from services.analyzer.model_errors import ModelUnavailable
from services.analyzer.prompt import history_messages
from services.analyzer.settings import AnalysisSettings
from services.analyzer.tickets import PRIORITIES, Tickets, analysis_job_id, validate_request
from services.common import keys
from services.common.errors import ResourceExhausted
from services.common.events import Event
from services.common.queue import Claim, JobQueue

log = logging.getLogger(__name__)


class DeepAnalysis:
    """Starts analyses (gRPC side) and runs their jobs (worker side)."""

    def __init__(
        self,
        redis: Redis,
        queue: JobQueue,
        tickets: Tickets,
        model: ModelClient,
        settings: AnalysisSettings,
    ) -> None:
        self.redis = redis
        self.queue = queue
        self.tickets = tickets
        self.model = model
        self.settings = settings

    async def start(self, device_id: str, window_s: float | None, priority: int) -> str:
        request = validate_request(device_id, window_s, priority, self.settings)
        ticket = await self.tickets.create(request)
        body = {
            "kind": "analysis",
            "ticket": ticket,
            "device_id": request.device_id,
            "window_s": request.window_s,
            "priority": PRIORITIES[request.priority],
        }
        outcome = await self.queue.enqueue(analysis_job_id(ticket), request.priority, body)
        if outcome == "shed":
            await self.tickets.forget(ticket)
            raise ResourceExhausted("the analysis queue is full; try again later", 30.0)
        await self.tickets.update(
            ticket, {"device_id": request.device_id}, status="queued", progress=0.0
        )
        log.info("analysis queued", extra={"ticket": ticket, "device_id": request.device_id})
        return ticket

    async def fail(self, ticket: str, device_id: str, error: str, *, publish: bool) -> Event:
        """Finish the ticket as failed; `publish` the event now (else the caller does)."""
        metrics.ANALYSES.labels("failed").inc()
        return await self.tickets.update(
            ticket,
            {"device_id": device_id, "error": error},
            status="failed",
            progress=1.0,
            publish=publish,
            extra={"error": error},
        )

    async def run(self, claim: Claim) -> tuple[Event, str]:
        """Do the analysis; returns the final event (published when the job completes)
        and the source of its result."""
        body = claim.body
        ticket, device_id = str(body["ticket"]), str(body["device_id"])
        window_s = float(body["window_s"])
        urgency = str(body.get("priority") or "info")
        await self.tickets.update(ticket, {"device_id": device_id}, status="running", progress=0.1)
        history = await read_history(
            self.redis, device_id, time.time() - window_s, self.settings.max_entries
        )
        if not history.readings:
            error = f"no readings from device {device_id!r} in the last {window_s:.0f} s"
            return await self.fail(ticket, device_id, error, publish=False), "none"
        summary = summarise(history.readings)
        await self.tickets.update(ticket, {"device_id": device_id}, status="running", progress=0.5)
        outcome = await self._diagnose(device_id, summary, window_s, urgency)
        result = {
            **outcome.insight,
            "source": outcome.source,
            "cost": round(outcome.cost, 9),
            **({"note": outcome.note} if outcome.note else {}),
        }
        metrics.ANALYSES.labels("done").inc()
        event = await self.tickets.update(
            ticket,
            {"device_id": device_id, "result": result},
            status="done",
            progress=1.0,
            publish=False,
            extra={"result": result, "readings": len(history.readings)},
        )
        return event, outcome.source

    async def _diagnose(
        self, device_id: str, summary: dict[str, dict[str, Any]], window_s: float, urgency: str
    ) -> Outcome:
        def fallback(note: str | None) -> Outcome:
            insight = builtin.analyze_history(device_id, summary, window_s, urgency)
            return Outcome(insight, "builtin", 0.0, note)

        if not self.model.enabled:
            return fallback(None)
        labels = await self._labels(device_id)
        try:
            answer = await self.model.ask(history_messages(device_id, labels, window_s, summary))
        except ModelUnavailable as exc:
            metrics.FALLBACKS.labels(exc.reason).inc()
            return fallback(exc.note)
        return Outcome(answer.insight, "model", answer.cost)

    async def _labels(self, device_id: str) -> dict[str, str]:
        raw = await self.redis.hget(keys.DEVICES, device_id)
        try:
            labels = json.loads(raw)["labels"] if raw else {}
        except (ValueError, KeyError, TypeError):
            return {}
        return {str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {}
