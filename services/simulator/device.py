"""A device client for the Ingest stream, as a well-behaved device maker would write it.

It authenticates with its token, says Hello, numbers its batches (from the clock, so a
restarted device never reuses a number), and never has more
than the server's window (`Flow.max_in_flight`) written and unacknowledged: `send`
waits while the window is full, and a lowered window is obeyed from the next write.
After any disconnect it reconnects with backoff (or after the server's `retry-after`
when it was told to slow down or that the replica is shutting down) and resends every
unacknowledged batch under its original sequence number, within the new window, so
each reading has exactly one effect.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
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
MAX_RETRY_AFTER_S = 60.0
# grpcio's asyncio client (grpc/grpc#36066): when the server ends a stream while a write
# of ours is in flight, the failed write sets the call's status to INTERNAL with these
# details, and the server's own status is lost. It says nothing about the server; the
# device reconnects and resends as after any other end. Counted under WRITE_RACE.
CORE_WRITE_RACE = "Internal error from Core"
WRITE_RACE = "WRITE_RACE"
SAID_KEPT = 16


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
    flows: list[int] = field(default_factory=list)  # every window the server gave
    # status name (or WRITE_RACE) -> streams that ended so
    ended: dict[str, int] = field(default_factory=dict)
    # status name -> the different details those streams ended with (the first SAID_KEPT)
    said: dict[str, set[str]] = field(default_factory=dict)
    anomalies: list[common_pb2.Verdict] = field(default_factory=list)


def retry_after(exc: grpc.RpcError) -> float | None:
    """The server's `retry-after` (seconds) on a refusal, if it sent one."""
    trailing = exc.trailing_metadata() if hasattr(exc, "trailing_metadata") else None
    for key, value in trailing or ():
        if key == "retry-after":
            with contextlib.suppress(ValueError):
                return min(MAX_RETRY_AFTER_S, max(0.0, float(value)))
    return None


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
        # Seqs must never repeat for a device, also across its restarts (ingest acks a
        # repeated seq without effect): start from the clock, in microseconds.
        self.next_seq = int(time.time() * 1_000_000)
        self.outbox: dict[int, ingest_pb2.ReadingBatch] = {}
        self.max_in_flight = 1
        self.stats = DeviceStats()
        self._room = asyncio.Condition()
        self._call: aio.StreamStreamCall | None = None
        self._unsent: list[int] = []  # outbox seqs not written on the current stream
        self._written: set[int] = set()  # written on the current stream, not yet acked
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
            self.outbox[seq] = ingest_pb2.ReadingBatch(seq=seq, readings=readings)
            self._unsent.append(seq)
        self.stats.sent += 1
        await self._pump()
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

    async def _pump(self) -> None:
        """Write unsent batches while the window has room."""
        async with self._write_lock:
            call = self._call
            while call is not None and self._unsent and len(self._written) < self.max_in_flight:
                seq = self._unsent.pop(0)
                batch = self.outbox.get(seq)
                if batch is None:
                    continue
                self._written.add(seq)
                try:
                    await call.write(ingest_pb2.DeviceMessage(batch=batch))
                except Exception:  # the stream broke: the reconnect resends
                    return

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
            pause: float | None = None
            try:
                await self._session()
                backoff = 0.1
            except grpc.RpcError as exc:
                code = exc.code() if hasattr(exc, "code") else grpc.StatusCode.UNKNOWN
                details = exc.details() if hasattr(exc, "details") else ""
                ended = code.name
                if code == grpc.StatusCode.INTERNAL and details == CORE_WRITE_RACE:
                    ended = WRITE_RACE
                self.stats.ended[ended] = self.stats.ended.get(ended, 0) + 1
                said = self.stats.said.setdefault(ended, set())
                if len(said) < SAID_KEPT:
                    said.add(details or "")
                if code in FATAL:
                    raise DeviceRefused(code, exc.details() or "") from None
                if code in (grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.UNAVAILABLE):
                    pause = retry_after(exc)
                log.debug(
                    "stream ended: %s %s", ended, details, extra={"device_id": self.device_id}
                )
            if self._closing:
                return
            self.stats.reconnects += 1
            await asyncio.sleep(pause if pause is not None else backoff * (0.5 + random.random()))
            backoff = min(backoff * 2, 5.0)

    async def _session(self) -> None:
        call = self.stub.Stream(metadata=(("authorization", f"Bearer {self.token}"),))
        async with self._write_lock:
            self._call = None
            self._written.clear()
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
            async with self._write_lock:
                self._call = None

    async def _flow(self, call: aio.StreamStreamCall, max_in_flight: int) -> None:
        self.stats.flows.append(max_in_flight)
        async with self._room:
            self.max_in_flight = max(1, max_in_flight)
            self._room.notify_all()
        if self._call is None:  # the first Flow of a stream: resend what is unacked
            async with self._write_lock:
                self._call = call
                self._unsent = sorted(self.outbox)
                self.stats.resent += len(self._unsent)
            self._connected.set()
        await self._pump()

    async def _ack(self, ack: ingest_pb2.Ack) -> None:
        async with self._room:
            self._written.discard(ack.seq)
            if self.outbox.pop(ack.seq, None) is not None:
                self.stats.acked += 1
            self._room.notify_all()
        self.stats.anomalies.extend(ack.anomalies)
        if self.on_ack is not None:
            self.on_ack(ack)
        await self._pump()
