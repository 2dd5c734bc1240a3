"""Reading a Redis stream as a consumer group: each entry handled by exactly one replica.

`read` returns new entries (blocking up to a bound), `stale` takes over entries that a
dead replica read but never acknowledged, `ack` acknowledges handled ones. Consumers
idle for long with nothing pending are removed, so the group does not grow with every
restart. Nothing here knows what the entries mean.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
from typing import Any, cast

from redis.asyncio import Redis
from redis.exceptions import ResponseError

log = logging.getLogger(__name__)

Entry = tuple[str, dict[str, str]]


def consumer_name() -> str:
    """Unique per process: host, pid and a random part (pids repeat in containers)."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


class GroupReader:
    def __init__(self, redis: Redis, stream: str, group: str, consumer: str) -> None:
        self.redis = redis
        self.stream = stream
        self.group = group
        self.consumer = consumer

    async def ensure(self, start_id: str = "$") -> None:
        """Create the group (and the stream) unless it exists."""
        try:
            await self.redis.xgroup_create(self.stream, self.group, id=start_id, mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def read(self, count: int, block_ms: int | None) -> list[Entry]:
        try:
            reply = cast(
                list[tuple[str, list[Entry]]] | None,
                await self.redis.xreadgroup(
                    self.group, self.consumer, {self.stream: ">"}, count=count, block=block_ms
                ),
            )
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            # The stream or group was deleted (e.g. FLUSHALL): recreate, read next time.
            await self.ensure()
            return []
        return [entry for _stream, entries in reply or () for entry in entries]

    async def stale(self, min_idle_ms: int, count: int) -> list[Entry]:
        """Entries read by another consumer and not acknowledged for `min_idle_ms`."""
        try:
            reply: list[Any] = await self.redis.xautoclaim(
                self.stream, self.group, self.consumer, min_idle_ms, "0-0", count=count
            )
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            return []
        # Entries deleted by trimming come back as (id, None): nothing to handle.
        return [(i, f) for i, f in reply[1] if f]

    async def ack(self, ids: list[str]) -> None:
        if ids:
            await self.redis.xack(self.stream, self.group, *ids)

    async def forget_idle_consumers(self, idle_ms: int) -> int:
        """Remove consumers idle for `idle_ms` with nothing pending; returns how many."""
        try:
            consumers = await self.redis.xinfo_consumers(self.stream, self.group)
        except ResponseError:
            return 0
        removed = 0
        for consumer in consumers:
            name = str(consumer["name"])
            if name != self.consumer and consumer["pending"] == 0 and consumer["idle"] > idle_ms:
                await self.redis.xgroup_delconsumer(self.stream, self.group, name)
                removed += 1
        return removed
