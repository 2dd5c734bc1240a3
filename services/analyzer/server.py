"""The analyzer's gRPC edge and its job workers."""

from __future__ import annotations

from typing import Any, ClassVar

from grpc import aio
from redis.asyncio import Redis
from vigil.v1 import analyzer_pb2, analyzer_pb2_grpc

from services.analyzer.settings import AnalyzerSettings
from services.analyzer.worker import Worker
from services.common.errors import Unimplemented
from services.common.queue import JobQueue
from services.common.scripts import Scripts


class AnalyzerServicer(analyzer_pb2_grpc.AnalyzerServicer):
    async def StartAnalysis(
        self, request: analyzer_pb2.StartAnalysisRequest, context: aio.ServicerContext[Any, Any]
    ) -> analyzer_pb2.AnalysisTicket:
        raise Unimplemented("deep analysis is not available in this build yet")

    async def GetAnalysis(
        self, request: analyzer_pb2.GetAnalysisRequest, context: aio.ServicerContext[Any, Any]
    ) -> analyzer_pb2.Analysis:
        raise Unimplemented("deep analysis is not available in this build yet")


class AnalyzerApp:
    """The analyzer service for the bootstrap."""

    service_names: ClassVar[list[str]] = [
        analyzer_pb2.DESCRIPTOR.services_by_name["Analyzer"].full_name
    ]
    grpc_options: ClassVar[list[tuple[str, Any]]] = []

    def __init__(self, settings: AnalyzerSettings, redis: Redis) -> None:
        queue = JobQueue(
            redis,
            Scripts(redis),
            lease_ms=int(settings.lease_s * 1000),
            max_attempts=settings.max_attempts,
            events_maxlen=settings.events_maxlen,
        )
        self.worker = Worker(redis, queue, settings.concurrency)

    def register(self, server: aio.Server) -> None:
        analyzer_pb2_grpc.add_AnalyzerServicer_to_server(AnalyzerServicer(), server)

    async def start(self) -> None:
        await self.worker.start()

    async def stop(self) -> None:
        await self.worker.stop()
