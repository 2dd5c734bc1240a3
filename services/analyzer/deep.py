"""Deep analysis of a device's recent history: tickets, progress, the job that runs it.

`StartAnalysis` validates the request, records a ticket (`vigil:analysis:{ticket}`,
expires) and enqueues a job of kind "analysis" with the requested priority in the same
queue as alerts. The worker that claims it reports progress (running 0.1 -> history
summarised 0.5 -> done 1.0) on the ticket and as `analysis` events, reads the history,
summarises it per sensor, asks the model (or the built-in analyzer) and finishes the
ticket with the result, or with an error when there is nothing to analyse or the job
kept failing.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any, cast

from redis.asyncio import Redis

from services.analyzer import builtin, metrics
from services.analyzer.history import read_history, summarise
from services.analyzer.insight import Outcome
from services.analyzer.llm import ModelClient, ModelUnavailable
from services.analyzer.prompt import history_messages
from services.analyzer.settings import AnalysisSettings
from services.common import keys
from services.common import metrics as common_metrics
from services.common.errors import InvalidArgument, NotFound, ResourceExhausted
from services.common.events import Event, rfc3339, stream_fields
from services.common.queue import Claim, JobQueue

log = logging.getLogger(__name__)

DEVICE_ID = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
TICKET = re.compile(r"an_[0-9a-f]{24}")
MIN_WINDOW_S = 60.0
PRIORITIES = {1: "info", 2: "warning", 3: "critical"}
STATUSES = ("queued", "running", "done", "failed")


def analysis_job_id(ticket: str) -> str:
    return f"analysis:{ticket}"


@dataclass(frozen=True, slots=True)
class Request:
    device_id: str
    window_s: float
    priority: int


def validate_request(
    device_id: str, window_s: float | None, priority: int, settings: AnalysisSettings
) -> Request:
    """A valid request, or InvalidArgument naming the field."""
    if not DEVICE_ID.fullmatch(device_id):
        raise InvalidArgument("device_id", "must match [A-Za-z0-9_.:-]{1,128}")
    window = settings.default_window_s if window_s is None else window_s
    if not MIN_WINDOW_S <= window <= settings.max_window_s:
        raise InvalidArgument(
            "window", f"must be from {MIN_WINDOW_S:.0f} s to {settings.max_window_s:.0f} s"
        )
    level = priority or 1
    if level not in PRIORITIES:
        raise InvalidArgument("priority", "must be INFO, WARNING or CRITICAL")
    return Request(device_id, window, level)


def validate_ticket(ticket: str) -> str:
    if not TICKET.fullmatch(ticket):
        raise InvalidArgument("ticket", "is not a ticket this service issued")
    return ticket


class Tickets:
    """The ticket records and their `analysis` events."""

    def __init__(self, redis: Redis, ttl_s: int, events_maxlen: int) -> None:
        self.redis = redis
        self.ttl_s = ttl_s
        self.events_maxlen = events_maxlen

    async def create(self, request: Request) -> str:
        ticket = "an_" + secrets.token_hex(12)
        await self.update(
            ticket,
            {
                "device_id": request.device_id,
                "window_s": request.window_s,
                "priority": PRIORITIES[request.priority],
                "created": rfc3339(time.time()),
            },
            status="queued",
            progress=0.0,
            publish=False,
        )
        return ticket

    async def get(self, ticket: str) -> dict[str, str]:
        record = cast(
            dict[str, str], await self.redis.hgetall(keys.analysis(validate_ticket(ticket)))
        )
        if not record:
            raise NotFound(f"ticket {ticket} is unknown or expired")
        return record

    async def forget(self, ticket: str) -> None:
        await self.redis.delete(keys.analysis(ticket))

    def event(
        self, ticket: str, device_id: str, status: str, progress: float, **extra: Any
    ) -> Event:
        return {
            "kind": "analysis",
            "ticket": ticket,
            "device_id": device_id,
            "severity": None,
            "status": status,
            "progress": round(progress, 3),
            "time": rfc3339(time.time()),
            **extra,
        }

    async def update(
        self,
        ticket: str,
        fields: dict[str, Any],
        *,
        status: str,
        progress: float,
        publish: bool = True,
        device_id: str = "",
        extra: dict[str, Any] | None = None,
    ) -> Event:
        """Record the ticket's status (and publish it as an event), in one MULTI."""
        record: dict[Any, Any] = {
            **{k: json.dumps(v) if isinstance(v, dict) else str(v) for k, v in fields.items()},
            "status": status,
            "progress": f"{progress:.3f}",
            "updated": rfc3339(time.time()),
        }
        event = self.event(
            ticket, device_id or str(fields.get("device_id", "")), status, progress, **(extra or {})
        )
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(keys.analysis(ticket), mapping=record)
            pipe.expire(keys.analysis(ticket), self.ttl_s)
            if publish:
                pipe.xadd(
                    keys.EVENTS,
                    stream_fields(event),  # type: ignore[arg-type]
                    maxlen=self.events_maxlen,
                    approximate=True,
                )
            await pipe.execute()
        if publish:
            common_metrics.EVENTS_PUBLISHED.labels("analysis").inc()
        return event


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
