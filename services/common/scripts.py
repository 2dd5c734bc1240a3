"""The Lua scripts behind every multi-step Redis change, registered once per client.

A crash between two commands must never leave half a change, so each change that
touches more than one key is one script in `lua/`, run atomically by Redis.
"""

from __future__ import annotations

from importlib import resources

from redis.asyncio import Redis
from redis.commands.core import AsyncScript


def _read(path: str) -> str:
    return resources.files("services.common").joinpath("lua", path).read_text()


def _source(name: str, *libs: str) -> str:
    """A script, with the `lua/lib/` libraries it uses prepended."""
    return "".join(_read(f"lib/{lib}.lua") + "\n" for lib in libs) + _read(f"{name}.lua")


class Scripts:
    """The registered scripts of one Redis client."""

    def __init__(self, redis: Redis) -> None:
        self.ingest_commit: AsyncScript = redis.register_script(_source("ingest_commit", "enqueue"))
        self.queue_claim: AsyncScript = redis.register_script(_source("queue_claim", "enqueue"))
        self.queue_complete: AsyncScript = redis.register_script(
            _source("queue_complete", "enqueue")
        )
        self.queue_enqueue: AsyncScript = redis.register_script(_source("queue_enqueue", "enqueue"))
        self.queue_heartbeat: AsyncScript = redis.register_script(
            _source("queue_heartbeat", "enqueue")
        )
        self.queue_fail: AsyncScript = redis.register_script(_source("queue_fail", "enqueue"))
        self.queue_reap: AsyncScript = redis.register_script(_source("queue_reap", "enqueue"))
        self.detector_alerts: AsyncScript = redis.register_script(
            _source("detector_alerts", "enqueue")
        )
        self.device_presence: AsyncScript = redis.register_script(_source("device_presence"))
        self.rate_acquire: AsyncScript = redis.register_script(_source("rate_acquire"))
        self.rate_settle: AsyncScript = redis.register_script(_source("rate_settle"))
        self.budget_reserve: AsyncScript = redis.register_script(_source("budget_reserve"))
        self.lock_release: AsyncScript = redis.register_script(_source("lock_release"))
        self.lock_refresh: AsyncScript = redis.register_script(_source("lock_refresh"))
        self.quick_publish: AsyncScript = redis.register_script(_source("quick_publish"))
