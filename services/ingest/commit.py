"""Making a batch's consequences durable: alerts, jobs, history, counters, all at once.

Everything one batch causes is applied by one Lua script (`ingest_commit.lua`)
together with its (device, seq) mark: its `alert` events, its analysis jobs, its
`vigil:history:{device}` entry, the readings counter of the second and, now and then,
the device's `vigil:devices` record. A resent batch has no second effect and a crash
never leaves half a batch. The batches of many devices that are ready together go to
Redis in one pipeline (one round trip, each script still atomic on its own).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from redis.asyncio import Redis

from services.common import keys
from services.common.alerts import Job, script_payload
from services.common.events import Event
from services.common.scripts import Scripts
from services.ingest.coalesce import Coalescer

SEEN_CAP = 4096
SEEN_TTL_S = 7 * 86_400
COUNTER_TTL_S = 120
MAX_COMMITS_PER_CALL = 256


@dataclass(slots=True)
class Commit:
    """What one applied batch writes."""

    device_id: str
    seq: int
    events: list[Event]
    jobs: list[Job]
    history: str = ""  # JSON [[sensor, unix seconds, value], ...]; "" writes none
    readings: int = 0
    device_record: str = ""  # JSON for vigil:devices; "" leaves it as it is


class Committer:
    def __init__(
        self,
        redis: Redis,
        scripts: Scripts,
        events_maxlen: int,
        history_maxlen: int = 2000,
        *,
        calls_in_flight: int = 2,
        on_call: Callable[[int, float], None] | None = None,
    ) -> None:
        self.redis = redis
        self.scripts = scripts
        self.events_maxlen = events_maxlen
        self.history_maxlen = history_maxlen
        self._coalescer: Coalescer[Commit, bool] = Coalescer(
            self._flush,
            max_items=MAX_COMMITS_PER_CALL,
            max_in_flight=calls_in_flight,
            on_call=on_call,
        )
        self._started = False

    @property
    def backlog(self) -> int:
        return self._coalescer.backlog

    def start(self) -> None:
        if not self._started:
            self._coalescer.start()
            self._started = True

    async def stop(self) -> None:
        await self._coalescer.stop()

    async def __aenter__(self) -> Committer:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def commit(self, item: Commit) -> bool:
        """Apply once; False when (device, seq) was applied before."""
        self.start()
        return await self._coalescer.submit(item)

    async def apply(self, device_id: str, seq: int, events: list[Event], jobs: list[Job]) -> bool:
        """Apply a batch's events and jobs once (without history): `commit` in short."""
        return await self.commit(Commit(device_id, seq, events, jobs))

    async def recent_seqs(self, device_id: str, count: int) -> set[int]:
        """The newest `count` seqs applied for the device (to ack resends at once)."""
        members = cast(list[str], await self.redis.zrevrange(keys.seen(device_id), 0, count - 1))
        return {int(m) for m in members}

    async def _flush(self, items: list[Commit]) -> list[bool]:
        second = int(time.time())
        counter = keys.readings_counter(second)
        pipe = self.redis.pipeline(transaction=False)
        for item in items:
            payload = (
                json.dumps(script_payload(item.events, item.jobs))
                if item.events or item.jobs
                else ""
            )
            await self.scripts.ingest_commit(
                keys=[
                    keys.seen(item.device_id),
                    keys.EVENTS,
                    keys.QUEUE,
                    keys.history(item.device_id),
                    counter,
                    keys.DEVICES,
                    *(keys.job(job[0]) for job in item.jobs),
                ],
                args=[
                    item.seq,
                    self.events_maxlen,
                    SEEN_CAP,
                    SEEN_TTL_S,
                    payload,
                    keys.QUEUE_NOTIFY,
                    item.history,
                    self.history_maxlen,
                    item.readings,
                    COUNTER_TTL_S,
                    item.device_id,
                    item.device_record,
                ],
                client=pipe,
            )
        replies: list[Any] = await pipe.execute()
        return [bool(reply) for reply in replies]
