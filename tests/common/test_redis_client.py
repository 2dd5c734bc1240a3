"""The shared Redis client rides out a Redis restart: a command issued while the server
is down waits (with backoff) and succeeds once it is back; one issued long after it is
gone fails within a bounded time."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from services.common.embedded_redis import EmbeddedRedis
from services.common.redis_client import connect


async def test_command_during_a_restart_waits_for_the_server(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path)
    server.start()
    client = connect(server.url)
    try:
        await client.set("before", "1")
        server.kill()  # kill -9: the client's pooled connection is now dead

        async def restart() -> None:
            await asyncio.sleep(0.5)  # the outage itself, not a synchronisation
            await asyncio.to_thread(server.start)

        back = asyncio.create_task(restart())
        # Issued while nothing listens: the client must retry until Redis is back.
        assert await client.get("before") == "1"  # the AOF kept it, too
        await back
    finally:
        await client.aclose()
        server.stop()


async def test_retries_are_bounded_when_redis_stays_away(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path)
    server.start()
    client = connect(server.url, retries=3)
    try:
        await client.ping()
        server.kill()
        started = time.monotonic()
        with pytest.raises(RedisConnectionError):
            await client.ping()
        # Backoff 0.1 + 0.2 + 0.4 s (jitter-free) between four tries: well under 5 s.
        assert 0.3 < time.monotonic() - started < 5.0
    finally:
        await client.aclose()
        server.stop()
