"""One reader of `vigil:events` per notifier, fanned out to bounded subscriber mailboxes.

Gap-free resume: a subscriber is registered (and starts collecting live entries) at the
hub's current position P in one step with no await in between; it then replays what it
missed, the entries in (last_id, P], from the stream itself, and then drains its
mailbox, which holds exactly the entries after P. So nothing is missed and nothing is
sent twice. When entries after last_id may have been trimmed, the subscriber gets a
`Snapshot` (the current alerts, consistent with the hub's position) instead of a
replay, then live entries after that position.

The hub applies every entry to the alert book and the device label map before fanning
it out, so state and stream never disagree. A full mailbox cuts that subscriber off;
the reader never waits for a subscriber.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, cast

from redis.asyncio import Redis

from services.common import keys
from services.common import metrics as common_metrics
from services.common.cancel import cancel_and_wait
from services.common.events import Event, newest_id, read_after, stream_id_key
from services.notifier import metrics
from services.notifier.alerts import AlertBook
from services.notifier.entry import BadEntry, Entry, parse
from services.notifier.filters import NO_LABELS, Filter
from services.notifier.mailbox import Mailbox
from services.notifier.replay import Lost, missed

log = logging.getLogger(__name__)
PAGE = 500
#: Most entries handed to a sender at once (one frame in batch mode).
MAX_BATCH = 256
LABELS_CAP = 200_000


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Current alerts as of stream position `position`, for a subscriber that must reset."""

    position: str
    alerts: list[dict[str, Any]]


Delivery = list[Entry] | Snapshot


@dataclass(eq=False)
class Subscriber:
    filter: Filter
    position: str
    mailbox: Mailbox[Entry]
    #: Writes entries straight to the client's socket if it can take them now; set by
    #: a transport that can (WebSocket without compression), None otherwise.
    direct: Callable[[list[Entry]], bool] | None = None
    #: Past its replay: every new entry is the next one it must get.
    live: bool = False


class Hub:
    def __init__(
        self, redis: Redis, reader: Redis, book: AlertBook | None = None, block_ms: int = 2000
    ) -> None:
        self.redis = redis
        # XREAD BLOCK holds its connection: the reader gets a client of its own whose
        # socket timeout is longer than the block.
        self.reader = reader
        self.book = book or AlertBook()
        self.block_ms = block_ms
        self.position = "0-0"
        #: device id -> labels, from alert and device events and the devices hash.
        self.labels: dict[str, dict[str, str]] = {}
        self.subscribers: set[Subscriber] = set()
        self._task: asyncio.Task[None] | None = None
        self.running = False
        #: Set when the service starts draining: /readyz answers 503 from then on.
        self.draining = False

    async def start(self) -> None:
        """Rebuild state from the stream up to its newest entry, then follow it live."""
        self.position = await newest_id(self.redis) or "0-0"
        await self._rebuild(self.position)
        await self._load_device_labels()
        self.running = True
        self._task = asyncio.create_task(self._read(), name="hub-reader")

    async def stop(self) -> None:
        self.running = False
        if self._task is None:
            return
        # A cancellation can be dropped as an XREAD is sent (services.common.cancel).
        await cancel_and_wait([self._task])
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _rebuild(self, upto: str) -> None:
        start = "-"
        while True:
            page = cast(
                list[tuple[str, dict[str, str]]],
                await self.redis.xrange(keys.EVENTS, min=start, max=upto, count=PAGE),
            )
            for entry_id, fields in page:
                self._absorb(entry_id, fields)
            if len(page) < PAGE:
                return
            start = f"({page[-1][0]}"

    async def _load_device_labels(self) -> None:
        """Labels of devices that have not raised an alert since the stream began."""
        async for device, raw in self.redis.hscan_iter(keys.DEVICES, count=PAGE):
            try:
                labels = json.loads(raw).get("labels")
            except (ValueError, AttributeError):
                continue
            if isinstance(labels, dict):
                self._remember(str(device), labels)

    def _remember(self, device: str, labels: dict[str, Any]) -> None:
        self.labels.pop(device, None)
        self.labels[device] = {str(k): str(v) for k, v in labels.items()}
        if len(self.labels) > LABELS_CAP:
            del self.labels[next(iter(self.labels))]

    def _absorb(self, entry_id: str, fields: dict[str, str]) -> Entry | None:
        """Apply one entry to the book and the label map; None if it is malformed."""
        try:
            entry, event = parse(entry_id, fields)
        except BadEntry as exc:
            metrics.BAD_ENTRIES.inc()
            log.warning("skipping malformed stream entry", extra={"entry_id": entry_id,
                                                                   "why": str(exc)})  # fmt: skip
            return None
        try:
            self._learn(entry, event)
            self.book.apply(entry, event)
        except Exception:  # state stays as it was; the event itself is still delivered
            common_metrics.ERRORS.labels("notifier", "alert_state").inc()
            log.exception("applying an event to the alert state failed",
                          extra={"entry_id": entry_id})  # fmt: skip
        return entry

    def _learn(self, entry: Entry, event: Event) -> None:
        labels = event.get("labels")
        if entry.device and isinstance(labels, dict) and entry.kind in ("alert", "device"):
            self._remember(entry.device, labels)

    async def _read(self) -> None:
        while self.running:
            try:
                entries = await read_after(self.reader, self.position, PAGE, self.block_ms)
            except asyncio.CancelledError:
                raise
            except Exception:  # Redis down or restarting: log, pause, retry
                if not self.running:
                    return
                log.exception("reading vigil:events failed; retrying")
                await asyncio.sleep(1.0)
                continue
            fresh: list[Entry] = []
            for entry_id, fields in entries:
                entry = self._absorb(entry_id, fields)
                self.position = entry_id
                if entry is not None:
                    fresh.append(entry)
            metrics.EVENTS_READ.inc(len(entries))
            if fresh:
                self._dispatch(fresh)

    def _dispatch(self, entries: list[Entry]) -> None:
        """Hand one page of new entries to every subscriber that wants them."""
        labelled = [(entry, self.labels.get(entry.device, NO_LABELS)) for entry in entries]
        written = 0
        for sub in self.subscribers:
            if sub.mailbox.overflowed.is_set():
                continue
            accepts = sub.filter.accepts
            wanted = [e for e, labels in labelled if accepts(e.kind, e.device, e.severity, labels)]
            if not wanted:
                continue
            # A client that has taken everything so far gets the page written at once:
            # no task switch, no framing (most clients, most of the time). Anything
            # else queues, in order, behind what it has not taken yet.
            if sub.direct is not None and sub.live and sub.mailbox.idle and _direct(sub, wanted):
                written += len(wanted)
                continue
            for entry in wanted:
                if not sub.mailbox.put(entry):
                    metrics.DROPPED_CLIENTS.inc()
                    break
        if written:
            metrics.WS_DELIVERED.inc(written)
            metrics.DELIVERY_LAG.observe(max(0.0, time.time() - entries[0].key[0] / 1000))

    def register(self, filt: Filter, capacity: int) -> Subscriber:
        """Start collecting live entries after the hub's current position. No await."""
        sub = Subscriber(filt, self.position, Mailbox(capacity))
        self.subscribers.add(sub)
        return sub

    def unregister(self, sub: Subscriber) -> None:
        self.subscribers.discard(sub)

    def _accepts(self, sub: Subscriber) -> Callable[[Entry], bool]:
        def accepts(entry: Entry) -> bool:
            labels = self.labels.get(entry.device, NO_LABELS)
            return sub.filter.accepts(entry.kind, entry.device, entry.severity, labels)

        return accepts

    def snapshot(self, filt: Filter) -> Snapshot:
        """The alerts `filt` selects, as of the hub's position. No await."""
        return Snapshot(self.position, self.book.select(filt, self.labels))

    async def deliveries(self, sub: Subscriber, last_id: str | None) -> AsyncIterator[Delivery]:
        """What `sub` missed since `last_id` (or a Snapshot), then its live entries."""
        # Live entries at or below `floor` were sent by the replay (or are covered by
        # the snapshot, or by another replica that was ahead of this one).
        floor: tuple[int, int] | None = None
        if last_id is not None:
            floor = stream_id_key(last_id)
            try:
                async for batch in missed(self.redis, last_id, sub.position, self._accepts(sub)):
                    yield batch
                if floor <= stream_id_key(sub.position):
                    floor = None  # the mailbox holds only entries after the position
            except Lost:
                snapshot = self.snapshot(sub.filter)
                floor = stream_id_key(snapshot.position)
                yield snapshot
        while True:
            sub.live = floor is None
            batch = await sub.mailbox.take(MAX_BATCH)
            if floor is not None:
                limit = floor
                batch = [entry for entry in batch if entry.key > limit]
                if not batch:
                    continue
                floor = None  # the mailbox is in id order: the rest are newer too
            yield batch


def _direct(sub: Subscriber, entries: list[Entry]) -> bool:
    """Write straight to the subscriber's socket; a failure there is that client's alone."""
    assert sub.direct is not None
    try:
        return sub.direct(entries)
    except Exception:
        common_metrics.ERRORS.labels("notifier", "direct_write").inc()
        log.exception("writing to a WebSocket client failed; it goes through its sender")
        sub.direct = None
        return False
