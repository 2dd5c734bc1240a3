"""One reader of `vigil:events` per notifier, fanned out to bounded subscriber queues.

Gap-free resume: a subscriber is registered (and starts collecting live events) at the
hub's current position P in one step with no await in between; it then replays what it
missed, the entries in (last_id, P], from the stream itself, and then drains its live
queue, which holds exactly the entries after P. So nothing is missed and nothing is
sent twice. A subscriber whose queue is full is cut off, never allowed to slow the
reader or the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

from redis.asyncio import Redis

from services.common.events import (
    SEVERITY_BY_NAME,
    Event,
    decode,
    entries_between,
    newest_id,
    oldest_id,
    read_after,
    stream_id_key,
)
from services.notifier import metrics

log = logging.getLogger(__name__)
PAGE = 500


class TooSlow(Exception):
    """The subscriber's queue overflowed; it must reconnect with its last id."""


class Reset(Exception):
    """The requested last id is older than what the stream still holds."""


@dataclass(frozen=True, slots=True)
class Filter:
    devices: frozenset[str] = frozenset()
    min_severity: int = 0
    kinds: frozenset[str] = frozenset()

    def accepts(self, kind: str, device: str, severity: int) -> bool:
        return (
            (not self.devices or device in self.devices)
            and severity >= self.min_severity
            and (not self.kinds or kind in self.kinds)
        )

    def accepts_event(self, event: Event) -> bool:
        severity = SEVERITY_BY_NAME.get(str(event.get("severity")), 0)
        return self.accepts(str(event.get("kind")), str(event.get("device_id") or ""), severity)


@dataclass(eq=False)
class Subscriber:
    filter: Filter
    position: str
    #: Live entries; None after an overflow (the queue is emptied to make room for it).
    queue: asyncio.Queue[tuple[str, Event] | None]
    overflowed: bool = False


class Hub:
    def __init__(self, redis: Redis, reader: Redis, block_ms: int = 2000) -> None:
        self.redis = redis
        # XREAD BLOCK holds its connection: the reader gets a client of its own whose
        # socket timeout is longer than the block.
        self.reader = reader
        self.block_ms = block_ms
        self.position = "0-0"
        self.subscribers: set[Subscriber] = set()
        self._task: asyncio.Task[None] | None = None
        self.running = False

    async def start(self) -> None:
        self.position = await newest_id(self.redis) or "0-0"
        self._task = asyncio.create_task(self._read(), name="hub-reader")
        self.running = True

    async def stop(self) -> None:
        self.running = False
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _read(self) -> None:
        while True:
            try:
                entries = await read_after(self.reader, self.position, PAGE, self.block_ms)
            except asyncio.CancelledError:
                raise
            except Exception:  # Redis down or restarting: log, pause, retry
                log.exception("reading vigil:events failed; retrying")
                await asyncio.sleep(1.0)
                continue
            for entry_id, fields in entries:
                self._dispatch(entry_id, fields)
                self.position = entry_id

    def _dispatch(self, entry_id: str, fields: dict[str, str]) -> None:
        metrics.EVENTS_READ.inc()
        kind, device, severity = (
            fields.get("kind", ""),
            fields.get("device", ""),
            int(fields.get("sev", 0)),
        )
        event: Event | None = None
        for sub in list(self.subscribers):
            if sub.overflowed or not sub.filter.accepts(kind, device, severity):
                continue
            if event is None:
                event = decode(fields)
            try:
                sub.queue.put_nowait((entry_id, event))
            except asyncio.QueueFull:
                sub.overflowed = True
                metrics.DROPPED_CLIENTS.inc()
                while not sub.queue.empty():
                    sub.queue.get_nowait()
                sub.queue.put_nowait(None)

    def register(self, filt: Filter, queue_size: int) -> Subscriber:
        """Start collecting live events after the hub's current position. No await."""
        sub = Subscriber(filt, self.position, asyncio.Queue(queue_size))
        self.subscribers.add(sub)
        return sub

    def unregister(self, sub: Subscriber) -> None:
        self.subscribers.discard(sub)

    async def events(
        self, sub: Subscriber, last_id: str | None
    ) -> AsyncIterator[tuple[str, Event]]:
        """What `sub` missed since `last_id`, then its live events, in id order."""
        sent = last_id
        if last_id is not None:
            await self._check_retained(last_id)
            async for entry_id, event in self._replay(last_id, sub.position, sub.filter):
                sent = entry_id
                yield entry_id, event
        while True:
            item = await sub.queue.get()
            if item is None:
                raise TooSlow()
            entry_id, event = item
            if sent is not None and stream_id_key(entry_id) <= stream_id_key(sent):
                continue
            sent = entry_id
            yield entry_id, event

    async def _check_retained(self, last_id: str) -> None:
        oldest = await oldest_id(self.redis)
        if oldest is not None and stream_id_key(oldest) > stream_id_key(last_id):
            # Entries after last_id may have been trimmed: the client must start over.
            raise Reset()

    async def _replay(
        self, after: str, upto: str, filt: Filter
    ) -> AsyncIterator[tuple[str, Event]]:
        start = f"({after}"
        while True:
            page = await entries_between(self.redis, start, upto, PAGE)
            for entry_id, fields in page:
                event = decode(fields)
                if filt.accepts_event(event):
                    yield entry_id, event
            if len(page) < PAGE:
                return
            start = f"({page[-1][0]}"
