"""A device client for the Ingest stream, as a well-behaved device maker would write it.

It authenticates with its token, says Hello, numbers its batches, keeps at most
`max_in_flight` (from the server's Flow) unacknowledged, and after any disconnect
reconnects with backoff and resends every unacknowledged batch under its original
sequence number, so each reading has exactly one effect.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import grpc
from grpc import aio
from vigil.v1 import common_pb2, ingest_pb2, ingest_pb2_grpc

log = logging.getLogger(__name__)

# Errors after which resending the same batches can never succeed.
FATAL = {
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.INVALID_ARGUMENT,
}


class DeviceRefused(Exception):
    """Ingest refused this device for good (credentials or invalid data)."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(f"{code.name}: {details}")
        self.code = code
        self.details = details


@dataclass
class DeviceStats:
    sent: int = 0
    acked: int = 0
    resent: int = 0
    reconnects: int = 0
    anomalies: list[common_pb2.Verdict] = field(default_factory=list)


class Device:
    """One device's stream to ingest, with an outbox of unacknowledged batches."""

    def __init__(
        self,
        channel: aio.Channel,
        device_id: str,
        token: str,
        labels: dict[str, str] | None = None,
        on_ack: Callable[[ingest_pb2.Ack], None] | None = None,
    ) -> None:
        self.stub = ingest_pb2_grpc.IngestStub(channel)
        self.device_id = device_id
        self.token = token
        self.labels = labels or {}
        self.on_ack = on_ack
        self.next_seq = 1
        self.outbox: dict[int, ingest_pb2.ReadingBatch] = {}
        self.max_in_flight = 1
        self.stats = DeviceStats()
        self._room = asyncio.Condition()
        self._call: aio.StreamStreamCall | None = None
        self._connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._write_lock = asyncio.Lock()  # grpc allows one write at a time per call
        self.refused: DeviceRefused | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"device-{self.device_id}")
        await self._connected.wait()

    async def send(self, readings: Sequence[common_pb2.Reading]) -> int:
        """Queue a batch; waits while the in-flight window is full. Returns its seq."""
        async with self._room:
            await self._room.wait_for(
                lambda: len(self.outbox) < self.max_in_flight or self.refused is not None
            )
            if self.refused is not None:
                raise self.refused
            seq = self.next_seq
            self.next_seq += 1
            batch = ingest_pb2.ReadingBatch(seq=seq, readings=readings)
            self.outbox[seq] = batch
        await self._write(batch)
        self.stats.sent += 1
        return seq

    async def drain(self) -> None:
        """Wait until every batch sent so far is acknowledged."""
        async with self._room:
            await self._room.wait_for(lambda: not self.outbox or self.refused is not None)
            if self.refused is not None:
                raise self.refused

    async def close(self) -> None:
        self._closing = True
        if self._call is not None:
            with contextlib.suppress(Exception):
                await self._call.done_writing()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, DeviceRefused):
                await self._task

    async def wait(self) -> None:
        """Wait for the connection loop to end (raises DeviceRefused if refused)."""
        if self._task is not None:
            await self._task

    async def _write(self, batch: ingest_pb2.ReadingBatch) -> None:
        call = self._call
        if call is None:
            return  # disconnected: the reconnect resends it from the outbox
        with contextlib.suppress(Exception):
            async with self._write_lock:
                await call.write(ingest_pb2.DeviceMessage(batch=batch))

    async def _run(self) -> None:
        try:
            await self._connect_loop()
        except DeviceRefused as exc:
            async with self._room:
                self.refused = exc
                self._room.notify_all()
            self._connected.set()
            raise

    async def _connect_loop(self) -> None:
        backoff = 0.1
        while not self._closing:
            try:
                await self._session()
                backoff = 0.1
            except grpc.RpcError as exc:
                code = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN
                if code in FATAL:
                    raise DeviceRefused(code, exc.details() or "") from None
                log.debug("stream ended: %s", code, extra={"device_id": self.device_id})
            if self._closing:
                return
            self.stats.reconnects += 1
            await asyncio.sleep(backoff * (0.5 + random.random()))
            backoff = min(backoff * 2, 5.0)

    async def _session(self) -> None:
        call = self.stub.Stream(metadata=(("authorization", f"Bearer {self.token}"),))
        self._call = None
        try:
            await call.write(
                ingest_pb2.DeviceMessage(
                    hello=ingest_pb2.Hello(device_id=self.device_id, labels=self.labels)
                )
            )
            async for message in call:
                kind = message.WhichOneof("kind")
                if kind == "flow":
                    await self._flow(call, message.flow.max_in_flight)
                elif kind == "ack":
                    await self._ack(message.ack)
            # The server ended the stream cleanly; surface its status as an error.
            code = await call.code()
            if code in FATAL:
                raise DeviceRefused(code, await call.details() or "")
        finally:
            self._call = None

    async def _flow(self, call: aio.StreamStreamCall, max_in_flight: int) -> None:
        first = self._call is None
        async with self._room:
            self.max_in_flight = max(1, max_in_flight)
            self._room.notify_all()
        if first:
            self._call = call
            async with self._write_lock:
                for seq in sorted(self.outbox):
                    self.stats.resent += 1
                    await call.write(ingest_pb2.DeviceMessage(batch=self.outbox[seq]))
            self._connected.set()

    async def _ack(self, ack: ingest_pb2.Ack) -> None:
        async with self._room:
            if self.outbox.pop(ack.seq, None) is not None:
                self.stats.acked += 1
            self._room.notify_all()
        self.stats.anomalies.extend(ack.anomalies)
        if self.on_ack is not None:
            self.on_ack(ack)
