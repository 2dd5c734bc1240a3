"""Deep-analysis tickets: request validation, the ticket record
(`vigil:analysis:{ticket}`, expires) and the `analysis` events that report its progress.

A status change and its event are written in one MULTI, so what GetAnalysis returns and
what dashboards saw never disagree. Nothing here runs an analysis (see deep.py).
"""

from __future__ import annotations

import json
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any, cast

from redis.asyncio import Redis

from services.analyzer.settings import AnalysisSettings
from services.common import keys
from services.common import metrics as common_metrics
from services.common.errors import InvalidArgument, NotFound
from services.common.events import Event, rfc3339, stream_fields

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
