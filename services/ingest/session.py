"""One device stream, from Hello to goodbye.

After Hello (validated, token checked) the device is marked online and told its window
(`Flow`). Then three stages run concurrently, each in the order batches arrived:

1. read: take the next message (within the idle timeout), validate it, enforce the
   window (a device over it is throttled: not read from until its backlog drains;
   past `VIGIL_WINDOW_STRIKES` it is cut off with RESOURCE_EXHAUSTED) and the
   per-device readings rate (throttled, or cut off when far over);
2. detect: ask the owning detector shard (coalesced with other devices' batches);
3. commit: make the consequences durable in Redis (coalesced), then ack.

So a device with a window of N has up to N batches between the stages, and batch k+1
is judged while batch k is being committed. A batch the device already had applied
(a resend; its seq is among the device's recent ones in Redis, read once at Hello)
skips detect and commit and is acked at once; any other resend is caught by the
commit script itself. Any failure ends the stream with a status; the device resends
what was not acked, on a new stream. When the replica drains (`finish`), the read
stage stops, what was read is acked, and the stream ends UNAVAILABLE.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import Any

import grpc
from grpc import aio
from vigil.v1 import detector_pb2, ingest_pb2

from services.common import auth
from services.common import metrics as common_metrics
from services.common.alerts import plan
from services.common.cancel import cancel_and_wait
from services.common.errors import (
    FailedPrecondition,
    InvalidArgument,
    ResourceExhausted,
    Unavailable,
)
from services.common.events import SEVERITY_NAMES
from services.ingest import metrics, validate
from services.ingest.commit import Commit, Committer
from services.ingest.flow import FlowController
from services.ingest.history import HistoryThinner
from services.ingest.presence import Connection, Presence
from services.ingest.router import DetectorRouter
from services.ingest.settings import IngestSettings

log = logging.getLogger(__name__)
RECENT_SEQS = 1024  # applied seqs read at Hello, to ack resends without a round trip
RECORD_EVERY_S = 1.0  # how often a connected device's last_seen is refreshed
MAX_THROTTLE_S = 2.0  # a device further over its rate than this is cut off
STRIKE_MEMORY_S = 10.0  # window strikes older than this are forgotten
_END = object()


class StreamAbort(Exception):
    """End the stream with this status (raised in a stage, aborted by the handler)."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Parts:
    """What every session of an ingest replica shares."""

    settings: IngestSettings
    router: DetectorRouter
    committer: Committer
    presence: Presence
    flow: FlowController


@dataclass(frozen=True, slots=True)
class _Failed:
    """Judging failed here: end the stream with `error` once the batches before it are
    committed and acked."""

    error: Exception


@dataclass(slots=True)
class Pending:
    batch: ingest_pb2.ReadingBatch
    rows: list[tuple[str, float, float]]
    arrived: float
    duplicate: bool
    result: detector_pb2.BatchResult | None = None


class TokenBucket:
    """The device's readings rate: `rate` per second, bursts of `burst` readings."""

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.at = now

    def take(self, count: int, now: float) -> float:
        """Spend `count`; returns the seconds to wait before they are covered."""
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        self.tokens -= count
        return -self.tokens / self.rate if self.tokens < 0 else 0.0


class Session:
    def __init__(self, parts: Parts, context: aio.ServicerContext[Any, Any]) -> None:
        self.parts = parts
        self.settings = parts.settings
        self.context = context
        self.outbox: asyncio.Queue[Any] = asyncio.Queue()
        self.to_detect: asyncio.Queue[Any] = asyncio.Queue()
        self.to_commit: asyncio.Queue[Any] = asyncio.Queue()
        self.unacked = 0
        self.drained = asyncio.Condition()
        self.window = parts.flow.window
        self.limit = self.window  # enforced: the old window until the device obeys a new one
        # Batches the device may still send under `limit` after a lower window was sent:
        # those it writes before it reads that Flow (see `flow_changed`).
        self.unseen = 0
        self.strikes: list[float] = []
        self.recent: set[int] = set()
        self.last_seq = 0
        self.connection: Connection | None = None
        self.history = HistoryThinner(self.settings.history_resolution_s)
        self.recorded_at = 0.0
        now = time.monotonic()
        self.bucket = TokenBucket(self.settings.device_rate, 2 * self.settings.device_rate, now)
        self.finishing = False
        self._reader: asyncio.Task[None] | None = None
        self._finisher: asyncio.Task[None] | None = None

    async def run(
        self, requests: AsyncIterator[ingest_pb2.DeviceMessage]
    ) -> AsyncGenerator[ingest_pb2.ServerMessage, None]:
        metadata = dict(self.context.invocation_metadata() or ())
        token = auth.check_device_token_format(auth.bearer(metadata.get("authorization")))
        try:
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for drops a cancellation
            # that arrives together with the message (see _read_loop).
            async with asyncio.timeout(self.settings.hello_timeout_s):
                first = await anext(requests)
        except StopAsyncIteration:
            return
        except TimeoutError:
            raise FailedPrecondition("no Hello within the hello timeout") from None
        if first.WhichOneof("kind") != "hello":
            raise FailedPrecondition("the first message of a stream must be Hello")
        device_id, labels = validate.hello(first.hello)
        auth.verify_device(self.settings.device_secret.reveal(), token, device_id)
        self.connection = Connection(device_id, labels, time.time())
        self.recent = await self.parts.committer.recent_seqs(device_id, RECENT_SEQS)
        await self.parts.presence.mark(self.connection, "online", time.time())
        log.info("device connected", extra={"device_id": device_id})
        self._reader = asyncio.create_task(self._stage(self._read_loop(requests)))
        tasks = [
            self._reader,
            asyncio.create_task(self._stage(self._detect_loop())),
            asyncio.create_task(self._stage(self._commit_loop())),
        ]
        if self.finishing:  # the replica began to drain while this stream said Hello
            self.finish()
        try:
            yield ingest_pb2.ServerMessage(flow=ingest_pb2.Flow(max_in_flight=self.window))
            self.parts.flow.listen(self.flow_changed)
            while True:
                item = await self.outbox.get()
                if item is _END:
                    if self.finishing:
                        raise Unavailable("ingest is shutting down; reconnect and resend")
                    break
                if isinstance(item, StreamAbort):
                    await self.context.abort(item.code, item.message)
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            try:
                self.parts.flow.forget(self.flow_changed)
                await cancel_and_wait([*tasks, self._finisher])
                for task in tasks:
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task
            finally:  # a second cancellation during the clean-up must not skip the goodbye
                await self._goodbye()

    def finish(self) -> None:
        """End the stream gracefully (the replica is draining): read no further batch,
        judge, commit and ack those already read, then end with UNAVAILABLE so the
        device reconnects (to another replica) and resends what it had not sent."""
        self.finishing = True
        if self._reader is not None and self._finisher is None:
            self._finisher = asyncio.create_task(self._stop_reading(self._reader))

    async def _stop_reading(self, reader: asyncio.Task[None]) -> None:
        await cancel_and_wait([reader])
        if reader.cancelled():  # it had not ended by itself: no _END behind its batches
            await self.to_detect.put(_END)

    async def _goodbye(self) -> None:
        assert self.connection is not None
        try:
            await asyncio.shield(self.parts.presence.goodbye(self.connection, time.time()))
        except Exception as exc:  # the stream is over either way; say why it was not marked
            common_metrics.ERRORS.labels("ingest", "presence").inc()
            log.warning("could not mark the device offline", extra={"error": str(exc)})
        log.info("device disconnected", extra={"device_id": self.connection.device_id})

    def flow_changed(self, window: int) -> None:
        """The controller set a new window: tell the device; enforce it once obeyed.

        A larger window holds at once. A smaller one cannot: until the device reads this
        Flow it may fill the window it knew, so up to `limit - unacked` batches may still
        arrive under the old one. Those are read under the old limit; from the next
        batch on, the device has seen the new window (it writes only with room under
        it, and our unacked count is never above its own), so it is enforced."""
        self.window = window
        if window >= self.limit:
            self.limit, self.unseen = window, 0
        else:
            self.unseen = self.limit - self.unacked
            if not self.unseen:
                self.limit = window
        self.outbox.put_nowait(ingest_pb2.ServerMessage(flow=ingest_pb2.Flow(max_in_flight=window)))

    async def _stage(self, coro: Any) -> None:
        """Run a stage; its failure ends the stream with that error."""
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.outbox.put_nowait(exc)

    async def _read_loop(self, requests: AsyncIterator[ingest_pb2.DeviceMessage]) -> None:
        settings = self.settings
        while True:
            try:
                # Not asyncio.wait_for: on Python 3.11 it returns a message that arrives in
                # the loop iteration that cancels this stage and drops the cancellation;
                # the stage then reads on, waits for acks that never come, and the stream
                # hangs. asyncio.timeout keeps the cancellation.
                async with asyncio.timeout(settings.idle_timeout_s):
                    message = await anext(requests)
            except StopAsyncIteration:
                break
            except TimeoutError:
                metrics.LIMITED.labels("idle", "refused").inc()
                metrics.REJECTED.labels("DEADLINE_EXCEEDED").inc()
                raise StreamAbort(
                    grpc.StatusCode.DEADLINE_EXCEEDED,
                    f"no message for {settings.idle_timeout_s:g} s (idle timeout); "
                    "reconnect when there is data",
                ) from None
            if message.WhichOneof("kind") != "batch":
                raise InvalidArgument("hello", "Hello may only be the first message")
            batch = message.batch
            arrived = time.perf_counter()
            rows = validate.batch(batch, time.time(), settings.max_batch_readings)
            self._sequence(batch.seq)
            await self._within_window()
            await self._within_rate(len(rows))
            async with self.drained:
                self.unacked += 1
            if self.unseen:
                self.unseen -= 1
                if not self.unseen:
                    self.limit = self.window
            duplicate = batch.seq in self.recent
            await self.to_detect.put(Pending(batch, rows, arrived, duplicate))
        await self.to_detect.put(_END)

    def _sequence(self, seq: int) -> None:
        if self.last_seq:
            if seq <= self.last_seq:
                metrics.SEQUENCE.labels("regression").inc()
            elif seq > self.last_seq + 1:
                metrics.SEQUENCE.labels("gap").inc()
        self.last_seq = max(self.last_seq, seq)

    async def _within_window(self) -> None:
        if self.unacked < self.limit:
            return
        now = time.monotonic()
        self.strikes = [t for t in self.strikes if now - t < STRIKE_MEMORY_S]
        self.strikes.append(now)
        if len(self.strikes) > self.settings.window_strikes:
            metrics.LIMITED.labels("window", "refused").inc()
            raise ResourceExhausted(
                f"more than {self.limit} unacknowledged batches in flight, "
                f"{len(self.strikes)} times in {STRIKE_MEMORY_S:g} s: honour Flow.max_in_flight",
                retry_after=1.0,
            )
        metrics.LIMITED.labels("window", "throttled").inc()
        async with self.drained:
            await self.drained.wait_for(lambda: self.unacked < self.limit)

    async def _within_rate(self, count: int) -> None:
        wait = self.bucket.take(count, time.monotonic())
        if wait <= 0.0:
            return
        if wait > MAX_THROTTLE_S:
            metrics.LIMITED.labels("rate", "refused").inc()
            raise ResourceExhausted(
                f"over {self.settings.device_rate:g} readings per second", retry_after=wait
            )
        metrics.LIMITED.labels("rate", "throttled").inc()
        await asyncio.sleep(wait)  # throttling: this device waits for its rate

    async def _detect_loop(self) -> None:
        assert self.connection is not None
        device_id, labels = self.connection.device_id, self.connection.labels
        while True:
            item = await self.to_detect.get()
            if item is _END:
                await self.to_commit.put(_END)
                return
            if not item.duplicate:
                sensors, times, values = zip(*item.rows, strict=True) if item.rows else ((), (), ())
                try:
                    item.result = await self.parts.router.detect(
                        detector_pb2.DeviceBatch(
                            device_id=device_id,
                            labels=labels,
                            seq=item.batch.seq,
                            sensors=sensors,
                            times=times,
                            values=values,
                        )
                    )
                except Exception as exc:
                    # The batches judged before this one are committed and acked first:
                    # the detector's state has moved past them (a restarted detector
                    # would not find their episode changes again on a resend).
                    await self.to_commit.put(_Failed(exc))
                    return
            await self.to_commit.put(item)

    async def _commit_loop(self) -> None:
        while True:
            item = await self.to_commit.get()
            if item is _END:
                self.outbox.put_nowait(_END)
                return
            if isinstance(item, _Failed):
                self.outbox.put_nowait(item.error)
                return
            ack = await self._apply(item)
            latency = time.perf_counter() - item.arrived
            metrics.BATCH_SECONDS.observe(latency)
            self.parts.flow.observe(latency)
            async with self.drained:
                self.unacked -= 1
                self.drained.notify_all()
            self.outbox.put_nowait(ingest_pb2.ServerMessage(ack=ack))

    async def _apply(self, item: Pending) -> ingest_pb2.Ack:
        assert self.connection is not None
        seq = item.batch.seq
        result = item.result
        if result is None:
            metrics.BATCHES.labels("duplicate").inc()
            return ingest_pb2.Ack(seq=seq)
        events, jobs = plan(self.connection.labels, list(result.episodes))
        now = time.time()
        record = ""
        if now - self.recorded_at >= RECORD_EVERY_S:
            record = self.connection.record("online", now)
            self.recorded_at = now
        applied = await self.parts.committer.commit(
            Commit(
                self.connection.device_id,
                seq,
                events,
                jobs,
                history=self.history.entry(item.rows, list(result.anomalies)),
                readings=len(item.rows),
                device_record=record,
            )
        )
        if not applied:
            metrics.BATCHES.labels("duplicate").inc()
            return ingest_pb2.Ack(seq=seq)
        metrics.BATCHES.labels("applied").inc()
        metrics.READINGS.inc(len(item.rows))
        for event in events:
            common_metrics.EVENTS_PUBLISHED.labels(event["kind"]).inc()
        for _, priority, _ in jobs:
            metrics.JOBS_ENQUEUED.labels(SEVERITY_NAMES[priority]).inc()
        return ingest_pb2.Ack(seq=seq, anomalies=result.anomalies)
