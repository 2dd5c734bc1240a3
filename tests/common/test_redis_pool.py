"""More concurrent commands than the client has connections wait for a free one: a
storm of device Hellos or goodbyes must not fail with "Too many connections"."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from services.common.redis_client import MAX_CONNECTIONS, connect


async def test_commands_beyond_the_pool_wait_instead_of_failing(redis: Redis) -> None:
    client = connect(_url(redis))
    try:
        # Each BLPOP holds its connection for 0.2 s: twice the pool at once.
        replies = await asyncio.gather(
            *(client.blpop([f"empty-{i}"], timeout=0.2) for i in range(2 * MAX_CONNECTIONS)),
            return_exceptions=True,
        )
    finally:
        await client.aclose()
    assert [r for r in replies if r is not None] == []


def _url(redis: Redis) -> str:
    kwargs = redis.connection_pool.connection_kwargs
    return f"redis://{kwargs['host']}:{kwargs['port']}/0"
