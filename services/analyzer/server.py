"""The analyzer's gRPC edge (deep analysis) and the wiring of its parts.

Thin servicer: it converts protobuf to plain values and back and lets `DeepAnalysis`
decide; errors are VigilErrors mapped to status codes by the shared interceptor.
"""

from __future__ import annotations

import json
import logging
from typing import Any, ClassVar

from grpc import aio
from redis.asyncio import Redis
from vigil.v1 import analyzer_pb2, analyzer_pb2_grpc, common_pb2

from services.analyzer.breaker import CircuitBreaker
from services.analyzer.budget import Budget
from services.analyzer.cache import InsightCache, L1Cache
from services.analyzer.deep import DeepAnalysis
from services.analyzer.diagnose import Diagnoser
from services.analyzer.groups import GroupReader, consumer_name
from services.analyzer.insight import Outcome
from services.analyzer.jobs import Jobs
from services.analyzer.llm import ModelClient, make_client
from services.analyzer.maintenance import SHED_GROUP, Maintenance
from services.analyzer.quick import GROUP as QUICK_GROUP
from services.analyzer.quick import QuickInsights, QuickResponder
from services.analyzer.settings import AnalyzerSettings
from services.analyzer.singleflight import SingleFlight
from services.analyzer.tickets import Tickets
from services.analyzer.worker import Worker
from services.common import keys
from services.common.queue import JobQueue
from services.common.ratelimit import RateLimiter
from services.common.scripts import Scripts

log = logging.getLogger(__name__)

STATUS = {
    "queued": analyzer_pb2.Analysis.QUEUED,
    "running": analyzer_pb2.Analysis.RUNNING,
    "done": analyzer_pb2.Analysis.DONE,
    "failed": analyzer_pb2.Analysis.FAILED,
}
URGENCY = {"info": common_pb2.INFO, "warning": common_pb2.WARNING, "critical": common_pb2.CRITICAL}


def analysis_message(ticket: str, record: dict[str, str]) -> analyzer_pb2.Analysis:
    message = analyzer_pb2.Analysis(
        ticket=ticket,
        status=STATUS.get(record.get("status", ""), analyzer_pb2.Analysis.STATUS_UNSPECIFIED),
        progress=float(record.get("progress") or 0.0),
        error=record.get("error", ""),
        device_id=record.get("device_id", ""),
    )
    if record.get("status") == "done" and record.get("result"):
        result: dict[str, Any] = json.loads(record["result"])
        message.result.CopyFrom(
            analyzer_pb2.Insight(
                diagnosis=str(result.get("diagnosis", "")),
                likely_causes=[str(c) for c in result.get("likely_causes", [])],
                actions=[str(a) for a in result.get("actions", [])],
                urgency=URGENCY.get(str(result.get("urgency")), common_pb2.SEVERITY_UNSPECIFIED),
                confidence=float(result.get("confidence", 0.0)),
                source=str(result.get("source", "")),
                cost=float(result.get("cost", 0.0)),
                note=str(result.get("note", "")),
            )
        )
    return message


class AnalyzerServicer(analyzer_pb2_grpc.AnalyzerServicer):
    def __init__(self, deep: DeepAnalysis) -> None:
        self.deep = deep

    async def StartAnalysis(
        self, request: analyzer_pb2.StartAnalysisRequest, context: aio.ServicerContext[Any, Any]
    ) -> analyzer_pb2.AnalysisTicket:
        window = (
            request.window.seconds + request.window.nanos / 1e9
            if request.HasField("window")
            else None
        )
        ticket = await self.deep.start(request.device_id, window, int(request.priority))
        return analyzer_pb2.AnalysisTicket(ticket=ticket)

    async def GetAnalysis(
        self, request: analyzer_pb2.GetAnalysisRequest, context: aio.ServicerContext[Any, Any]
    ) -> analyzer_pb2.Analysis:
        record = await self.deep.tickets.get(request.ticket)
        return analysis_message(request.ticket, record)


class AnalyzerApp:
    """The analyzer service for the bootstrap."""

    service_names: ClassVar[list[str]] = [
        analyzer_pb2.DESCRIPTOR.services_by_name["Analyzer"].full_name
    ]
    grpc_options: ClassVar[list[tuple[str, Any]]] = []

    def __init__(self, settings: AnalyzerSettings, redis: Redis) -> None:
        self.settings = settings
        scripts = Scripts(redis)
        self.queue = JobQueue(
            redis,
            scripts,
            lease_ms=int(settings.lease_s * 1000),
            max_attempts=settings.max_attempts,
            aging_ms=int(settings.aging_s * 1000),
            events_maxlen=settings.events_maxlen,
        )
        llm = settings.llm
        self.model = ModelClient(
            llm,
            make_client(llm) if llm.enabled else None,
            RateLimiter(redis, scripts, jitter=0.2),
            Budget(redis, scripts, llm.daily_budget),
            CircuitBreaker(llm.breaker_failures, llm.breaker_cooldown_s),
        )
        cache = InsightCache(redis, L1Cache(settings.cache.l1_size), settings.cache.ttl_s)
        flights: SingleFlight[Outcome] = SingleFlight(
            redis, scripts, settings.cache.lock_s, settings.cache.wait_s
        )
        self.diagnoser = Diagnoser(cache, flights, self.model, settings.cache.label_keys)
        quick = QuickInsights(redis, scripts, self.diagnoser, settings.events_maxlen)
        consumer = consumer_name()
        self.responder = QuickResponder(
            quick, GroupReader(redis, keys.EVENTS, QUICK_GROUP, consumer)
        )
        tickets = Tickets(redis, settings.analysis.ticket_ttl_s, settings.events_maxlen)
        self.deep = DeepAnalysis(redis, self.queue, tickets, self.model, settings.analysis)
        self.jobs = Jobs(redis, self.diagnoser, quick, self.deep)
        self.worker = Worker(redis, self.queue, self.jobs.run, settings.concurrency, self.jobs.dead)
        self.maintenance = Maintenance(
            self.queue,
            GroupReader(redis, keys.QUEUE_SHED, SHED_GROUP, consumer),
            self.jobs.dead,
            self.jobs.shed,
            settings.reap_s,
        )

    def register(self, server: aio.Server) -> None:
        analyzer_pb2_grpc.add_AnalyzerServicer_to_server(AnalyzerServicer(self.deep), server)

    async def start(self) -> None:
        await self.queue.configure(self.settings.max_depth)
        await self.responder.start()
        await self.maintenance.start()
        await self.worker.start()
        log.info(
            "analyzer started",
            extra={
                "model": self.settings.llm.model if self.model.enabled else "builtin only",
                "concurrency": self.settings.concurrency,
            },
        )

    async def drain(self) -> None:
        """Stop claiming and hand running jobs back now, so another replica takes them
        at once instead of after a lease expires."""
        await self.worker.stop()

    async def stop(self) -> None:
        await self.worker.stop()
        await self.maintenance.stop()
        await self.responder.stop()
        await self.model.close()
