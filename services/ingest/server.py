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
from typing import Any, ClassVar, NoReturn

from grpc import aio
from redis.asyncio import Redis
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

# Draining: a stream opened on this replica is refused, and its device told to wait
# REFUSED_WAIT_S before it comes back; the replica stops once no stream has come for
# QUIET_S (at most SETTLE_MAX_S after its own streams have ended).
REFUSED_WAIT_S = 1.0
QUIET_S = 0.3
SETTLE_MAX_S = 3.0
FIRST_MESSAGE_WAIT_S = 0.5  # a refused stream's Hello is read first (see `_refuse`)


def _counted(stage: str) -> Any:
    items = metrics.CALL_ITEMS.labels(stage)
    seconds = metrics.CALL_SECONDS.labels(stage)

    def record(count: int, elapsed: float) -> None:
        items.observe(count)
        seconds.observe(elapsed)

    return record


async def _refuse(
    requests: AsyncIterator[ingest_pb2.DeviceMessage], refusal: VigilError
) -> NoReturn:
    """Refuse a stream, once its first message (the Hello) is read or has not come
    within FIRST_MESSAGE_WAIT_S: a stream ended while the device's write is in flight
    reaches grpcio's asyncio client as its own INTERNAL ("Internal error from Core",
    grpc/grpc#36066), and the device would lose the status and its `retry-after`."""
    metrics.REJECTED.labels(refusal.status).inc()
    with contextlib.suppress(Exception):  # the refusal stands whatever the device did
        async with asyncio.timeout(FIRST_MESSAGE_WAIT_S):
            await anext(aiter(requests))
    raise refusal


class IngestServicer(ingest_pb2_grpc.IngestServicer):
    def __init__(self, parts: Parts) -> None:
        self.parts = parts
        self.open_streams = 0
        self.sessions: set[Session] = set()
        self.draining = False
        self._refused = asyncio.Event()  # set by each stream refused while draining
        self._ended = asyncio.Condition()

    async def drain(self, timeout_s: float) -> None:
        """Finish every stream (see `Session.finish`) and wait, at most `timeout_s`,
        until all have ended and the devices' reconnects have been refused; streams
        opened from now on are refused UNAVAILABLE with a `retry-after`."""
        loop = asyncio.get_running_loop()
        until = loop.time() + timeout_s
        self.draining = True
        for session in list(self.sessions):
            session.finish()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s), self._ended:
                await self._ended.wait_for(lambda: not self.sessions)
        await self._settle(min(until, loop.time() + SETTLE_MAX_S))

    async def _settle(self, until: float) -> None:
        """The devices whose streams just ended come back within moments, here when
        nothing routes them elsewhere. Refuse them (each then waits its `retry-after`)
        until none has come for `QUIET_S`, or until `until`: a stream that arrives as
        the gRPC server stops is one it accepted but never handed over, and gRPC ends
        it CANCELLED instead of with the refusal that says why and when to come back."""
        loop = asyncio.get_running_loop()
        while (left := until - loop.time()) > 0:
            self._refused.clear()
            try:
                async with asyncio.timeout(min(QUIET_S, left)):
                    await self._refused.wait()
            except TimeoutError:
                return

    async def Stream(
        self,
        request_iterator: AsyncIterator[ingest_pb2.DeviceMessage],
        context: aio.ServicerContext[Any, Any],
    ) -> AsyncIterator[ingest_pb2.ServerMessage]:
        if self.draining:
            self._refused.set()
            await _refuse(
                request_iterator,
                Unavailable("ingest is shutting down; reconnect", retry_after=REFUSED_WAIT_S),
            )
        limit = self.parts.settings.max_streams
        if self.open_streams >= limit:
            metrics.LIMITED.labels("streams", "refused").inc()
            await _refuse(
                request_iterator,
                ResourceExhausted(f"this ingest serves {limit} streams already", 5.0),
            )
        self.open_streams += 1
        metrics.STREAMS.inc()
        session = Session(self.parts, context)
        session.finishing = self.draining
        self.sessions.add(session)
        run = session.run(request_iterator)
        try:
            async for message in run:
                yield message
        except VigilError as exc:
            metrics.REJECTED.labels(exc.status).inc()
            raise
        finally:
            # When grpc's write of a message is cancelled (the device went away, the
            # server stops), grpc leaves this generator suspended at its yield and it is
            # closed later, by garbage collection; the session's generator would then be
            # closed later still, in a task of its own, after `drain` had seen this
            # stream end and gone on to close Redis: no goodbye. Close it here, so its
            # clean-up and goodbye are done before the stream counts as ended.
            try:
                await run.aclose()
            finally:
                self.open_streams -= 1
                metrics.STREAMS.dec()
                self.sessions.discard(session)
                async with self._ended:
                    self._ended.notify_all()


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
        self.servicer = IngestServicer(self.parts)
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
        ingest_pb2_grpc.add_IngestServicer_to_server(self.servicer, server)

    async def drain(self) -> None:
        """Shutdown begins: every device stream acks what it has and ends (UNAVAILABLE),
        within the shutdown grace, and the devices' goodbyes are written, all while the
        detector and Redis are still at hand."""
        await self.servicer.drain(self.settings.common.shutdown_grace_s)
        await self.parts.presence.drain(timeout_s=2.0)

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
