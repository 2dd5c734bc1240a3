"""Device presence: the `vigil:devices` record and `device` online/offline events.

A stream that says Hello marks its device online; when it ends the device goes
offline, unless another connection of the same device already took over (the record
names its connection, checked in `device_presence.lua`). A device whose ingest dies
without a goodbye stays "online" here until it reconnects; the detector's offline rule
is what notices its silence. While connected, the commit script refreshes `last_seen`
at most once a second (`record`). A goodbye never blocks a stream's end for long: it
runs in a task of its own.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from dataclasses import dataclass, field

from redis.asyncio import Redis

from services.common import keys
from services.common.events import rfc3339
from services.common.scripts import Scripts

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Connection:
    """One stream of one device: `conn` tells it from the device's other streams."""

    device_id: str
    labels: dict[str, str]
    connected: float
    conn: str = field(default_factory=lambda: secrets.token_hex(8))

    def record(self, status: str, now: float) -> str:
        """The device's `vigil:devices` JSON."""
        return json.dumps(
            {
                "device_id": self.device_id,
                "labels": self.labels,
                "status": status,
                "last_seen": rfc3339(now),
                "connected_at": rfc3339(self.connected),
                "conn": self.conn,
            },
            separators=(",", ":"),
        )


class Presence:
    def __init__(self, redis: Redis, scripts: Scripts, events_maxlen: int) -> None:
        self.redis = redis
        self.scripts = scripts
        self.events_maxlen = events_maxlen
        self._goodbyes: set[asyncio.Task[bool]] = set()

    def goodbye(self, connection: Connection, now: float) -> asyncio.Task[bool]:
        """Mark the device offline in a task of its own: a stream cancelled at shutdown
        still says goodbye, and `drain` lets shutdown wait for it before Redis closes."""
        task = asyncio.create_task(self.mark(connection, "offline", now))
        self._goodbyes.add(task)
        task.add_done_callback(self._goodbyes.discard)
        return task

    async def drain(self, timeout_s: float) -> None:
        if self._goodbyes:
            await asyncio.wait(list(self._goodbyes), timeout=timeout_s)

    async def mark(self, connection: Connection, status: str, now: float) -> bool:
        """Record `status` and publish the `device` event; False if a newer connection
        owns the record (then nothing changes)."""
        event = {
            "kind": "device",
            "device_id": connection.device_id,
            "labels": connection.labels,
            "status": status,
            "severity": None,
            "time": rfc3339(now),
        }
        changed = await self.scripts.device_presence(
            keys=[keys.DEVICES, keys.EVENTS],
            args=[
                connection.device_id,
                connection.record(status, now),
                connection.conn,
                status,
                json.dumps(event, separators=(",", ":")),
                self.events_maxlen,
            ],
        )
        return bool(changed)
