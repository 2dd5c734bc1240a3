"""Ingest's gRPC edge: the device stream, the limits around it, and the shared parts.

The servicer counts streams and refuses those over `VIGIL_MAX_STREAMS` with a clear
status (HTTP/2's own per-connection stream cap would only make a client queue in
silence, and one connection often carries many devices); each accepted stream is a
`Session`. The gRPC server itself enforces the message size and keepalive
(clients that ping too often get GOAWAY), from options set here. Coalescers (detector
calls, Redis commits) and the flow controller are shared by all streams of the replica.
Holds no device state beyond a stream's life: any replica can serve any device.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any, ClassVar

from grpc import aio
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from vigil.v1 import ingest_pb2, ingest_pb2_grpc

from services.common.cancel import cancel_and_wait
from services.common.errors import ResourceExhausted, Unavailable, VigilError
from services.common.scripts import Scripts
from services.ingest import metrics
from services.ingest.commit import Committer
from services.ingest.flow import FlowController
from services.ingest.presence import Presence
from services.ingest.router import DetectorRouter
from services.ingest.session import Parts, Session
from services.ingest.settings import IngestSettings


def _counted(stage: str) -> Any:
    items = metrics.CALL_ITEMS.labels(stage)
    seconds = metrics.CALL_SECONDS.labels(stage)

    def record(count: int, elapsed: float) -> None:
        items.observe(count)
        seconds.observe(elapsed)

    return record


class IngestServicer(ingest_pb2_grpc.IngestServicer):
    def __init__(self, parts: Parts) -> None:
        self.parts = parts
        self.open_streams = 0

    async def Stream(
        self,
        request_iterator: AsyncIterator[ingest_pb2.DeviceMessage],
        context: aio.ServicerContext[Any, Any],
    ) -> AsyncIterator[ingest_pb2.ServerMessage]:
        limit = self.parts.settings.max_streams
        if self.open_streams >= limit:
            metrics.LIMITED.labels("streams", "refused").inc()
            metrics.REJECTED.labels("RESOURCE_EXHAUSTED").inc()
            raise ResourceExhausted(f"this ingest serves {limit} streams already", 5.0)
        self.open_streams += 1
        metrics.STREAMS.inc()
        try:
            async for message in Session(self.parts, context).run(request_iterator):
                yield message
        except VigilError as exc:
            metrics.REJECTED.labels(exc.status).inc()
            raise
        except (RedisConnectionError, RedisTimeoutError) as exc:
            # Redis away for longer than its client retries: the batches in flight are
            # not acked, so the device must resend them on a new stream; say so.
            metrics.REJECTED.labels("UNAVAILABLE").inc()
            raise Unavailable(f"Redis unavailable ({type(exc).__name__}): reconnect") from None
        finally:
            self.open_streams -= 1
            metrics.STREAMS.dec()


class IngestApp:
    """The ingest service for the bootstrap."""

    service_names: ClassVar[list[str]] = [
        ingest_pb2.DESCRIPTOR.services_by_name["Ingest"].full_name
    ]

    def __init__(self, settings: IngestSettings, redis: Redis) -> None:
        self.settings = settings
        scripts = Scripts(redis)
        router = DetectorRouter(
            settings.detector_addrs, settings.detect_timeout_s, on_call=_counted("detect")
        )
        committer = Committer(
            redis,
            scripts,
            settings.events_maxlen,
            settings.history_maxlen,
            on_call=_counted("commit"),
        )
        flow = FlowController(
            settings.max_in_flight,
            settings.flow_target_s,
            lambda: router.backlog + committer.backlog,
        )
        flow.listen(metrics.WINDOW.set)
        metrics.WINDOW.set(flow.window)
        self.parts = Parts(
            settings, router, committer, Presence(redis, scripts, settings.events_maxlen), flow
        )
        self._flow_task: asyncio.Task[None] | None = None
        self.grpc_options: list[tuple[str, Any]] = [
            ("grpc.max_receive_message_length", settings.max_message_bytes),
            ("grpc.keepalive_time_ms", int(settings.keepalive_s * 1000)),
            ("grpc.keepalive_timeout_ms", 20_000),
            ("grpc.keepalive_permit_without_calls", 1),
            (
                "grpc.http2.min_ping_interval_without_data_ms",
                int(settings.min_client_ping_s * 1000),
            ),
            ("grpc.http2.max_ping_strikes", 2),
        ]

    def register(self, server: aio.Server) -> None:
        ingest_pb2_grpc.add_IngestServicer_to_server(IngestServicer(self.parts), server)

    async def start(self) -> None:
        self.parts.router.start()
        self.parts.committer.start()
        self._flow_task = asyncio.create_task(self.parts.flow.run(), name="ingest-flow")

    async def stop(self) -> None:
        await self.parts.presence.drain(timeout_s=2.0)  # goodbyes before Redis closes
        if self._flow_task is not None:
            await cancel_and_wait([self._flow_task])
            with contextlib.suppress(asyncio.CancelledError):
                await self._flow_task
        await self.parts.router.close()
        await self.parts.committer.stop()
