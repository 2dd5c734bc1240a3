"""Ingest's gRPC edge: the device stream.

Per stream: check the bearer token's form, read Hello, check the token against the
device id, send Flow, then for each batch: validate, skip if already applied, ask the
owning detector shard, commit the consequences to Redis, and only then Ack.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any, ClassVar

from grpc import aio
from redis.asyncio import Redis
from vigil.v1 import detector_pb2, ingest_pb2, ingest_pb2_grpc

from services.common import auth
from services.common import metrics as common_metrics
from services.common.errors import FailedPrecondition, InvalidArgument, VigilError
from services.common.events import SEVERITY_NAMES
from services.common.scripts import Scripts
from services.ingest import metrics, validate
from services.ingest.commit import Committer, plan
from services.ingest.router import DetectorRouter
from services.ingest.settings import IngestSettings

log = logging.getLogger(__name__)


class IngestServicer(ingest_pb2_grpc.IngestServicer):
    def __init__(
        self, settings: IngestSettings, router: DetectorRouter, committer: Committer
    ) -> None:
        self.settings = settings
        self.router = router
        self.committer = committer

    async def Stream(
        self,
        request_iterator: AsyncIterator[ingest_pb2.DeviceMessage],
        context: aio.ServicerContext[Any, Any],
    ) -> AsyncIterator[ingest_pb2.ServerMessage]:
        metrics.STREAMS.inc()
        try:
            async for message in self._stream(request_iterator, context):
                yield message
        except VigilError as exc:
            metrics.REJECTED.labels(exc.status).inc()
            raise
        finally:
            metrics.STREAMS.dec()

    async def _stream(
        self,
        requests: AsyncIterator[ingest_pb2.DeviceMessage],
        context: aio.ServicerContext[Any, Any],
    ) -> AsyncIterator[ingest_pb2.ServerMessage]:
        metadata = dict(context.invocation_metadata() or ())
        token = auth.check_device_token_format(auth.bearer(metadata.get("authorization")))
        try:
            first = await asyncio.wait_for(anext(requests), self.settings.hello_timeout_s)
        except StopAsyncIteration:
            return
        except TimeoutError:
            raise FailedPrecondition("no Hello within the hello timeout") from None
        if first.WhichOneof("kind") != "hello":
            raise FailedPrecondition("the first message of a stream must be Hello")
        device_id, labels = validate.hello(first.hello)
        auth.verify_device(self.settings.device_secret.reveal(), token, device_id)
        log.info("device connected", extra={"device_id": device_id})
        yield ingest_pb2.ServerMessage(
            flow=ingest_pb2.Flow(max_in_flight=self.settings.max_in_flight)
        )

        async for message in requests:
            if message.WhichOneof("kind") != "batch":
                raise InvalidArgument("hello", "Hello may only be the first message")
            ack = await self._batch(device_id, labels, message.batch)
            yield ingest_pb2.ServerMessage(ack=ack)
        log.info("device disconnected", extra={"device_id": device_id})

    async def _batch(
        self, device_id: str, labels: dict[str, str], batch: ingest_pb2.ReadingBatch
    ) -> ingest_pb2.Ack:
        validate.batch(batch, time.time(), self.settings.max_batch_readings)
        if await self.committer.already_applied(device_id, batch.seq):
            metrics.BATCHES.labels("duplicate").inc()
            return ingest_pb2.Ack(seq=batch.seq)
        result = await self.router.detect(
            detector_pb2.DeviceBatch(
                device_id=device_id, labels=labels, seq=batch.seq, readings=batch.readings
            )
        )
        events, jobs = plan(device_id, labels, result)
        applied = await self.committer.apply(device_id, batch.seq, events, jobs)
        if not applied:
            metrics.BATCHES.labels("duplicate").inc()
            return ingest_pb2.Ack(seq=batch.seq)
        metrics.BATCHES.labels("applied").inc()
        metrics.READINGS.inc(len(batch.readings))
        for event in events:
            common_metrics.EVENTS_PUBLISHED.labels(event["kind"]).inc()
        for _, priority, _ in jobs:
            metrics.JOBS_ENQUEUED.labels(SEVERITY_NAMES[priority]).inc()
        return ingest_pb2.Ack(seq=batch.seq, anomalies=result.anomalies)


class IngestApp:
    """The ingest service for the bootstrap."""

    service_names: ClassVar[list[str]] = [
        ingest_pb2.DESCRIPTOR.services_by_name["Ingest"].full_name
    ]

    def __init__(self, settings: IngestSettings, redis: Redis) -> None:
        self.settings = settings
        self.router = DetectorRouter(settings.detector_addrs, settings.detect_timeout_s)
        self.committer = Committer(redis, Scripts(redis), settings.events_maxlen)
        self.grpc_options: list[tuple[str, Any]] = [
            ("grpc.max_receive_message_length", 4 * 1024 * 1024),
        ]

    def register(self, server: aio.Server) -> None:
        ingest_pb2_grpc.add_IngestServicer_to_server(
            IngestServicer(self.settings, self.router, self.committer), server
        )

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        await self.router.close()
