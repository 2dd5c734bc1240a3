"""The Lua scripts behind every multi-step Redis change, registered once per client.

A crash between two commands must never leave half a change, so each change that
touches more than one key is one script in `lua/`, run atomically by Redis.
"""

from __future__ import annotations

from importlib import resources

from redis.asyncio import Redis
from redis.commands.core import AsyncScript


def _source(name: str) -> str:
    return resources.files("services.common").joinpath("lua", f"{name}.lua").read_text()


class Scripts:
    """The registered scripts of one Redis client."""

    def __init__(self, redis: Redis) -> None:
        self.ingest_commit: AsyncScript = redis.register_script(_source("ingest_commit"))
        self.queue_claim: AsyncScript = redis.register_script(_source("queue_claim"))
        self.queue_complete: AsyncScript = redis.register_script(_source("queue_complete"))
        self.rate_acquire: AsyncScript = redis.register_script(_source("rate_acquire"))
        self.rate_settle: AsyncScript = redis.register_script(_source("rate_settle"))
