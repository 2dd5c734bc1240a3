"""Stopping a task that loops on Redis: one cancel may be dropped on Python 3.11 (redis-py
sends through asyncio.wait_for); `cancel_and_wait` stops it anyway, every time."""

from __future__ import annotations

import asyncio
import contextlib
import random

import pytest
from redis.asyncio import Redis

from services.common import keys
from services.common.cancel import Background, cancel_and_wait, stray
from services.common.embedded_redis import EmbeddedRedis
from services.common.events import read_after
from services.common.redis_client import connect

TRIALS = 25


@pytest.fixture
def redis_url(redis_server: EmbeddedRedis) -> str:
    return redis_server.url


async def test_a_task_that_drops_one_cancellation_is_still_stopped() -> None:
    dropped = 0

    async def stubborn() -> None:
        nonlocal dropped
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                if dropped:
                    raise
                dropped += 1  # what asyncio.wait_for does on 3.11, once

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0)
    await asyncio.wait_for(cancel_and_wait([task], retry_s=0.05), 5)
    assert task.cancelled() and dropped == 1


async def test_a_reader_of_a_busy_stream_always_stops(redis: Redis, redis_url: str) -> None:
    """Cancelled just after it sent an XREAD (it always is, here), the reader's first
    cancellation is mostly dropped; it must stop all the same."""

    async def busy() -> None:
        while True:
            await redis.xadd(keys.EVENTS, {"kind": "x"}, maxlen=1000)
            await asyncio.sleep(random.random() * 0.002)

    writer = asyncio.create_task(busy())
    try:
        reader = connect(redis_url, timeout_s=10)
        for _ in range(TRIALS):
            position = "0-0"

            async def follow(reader: Redis = reader) -> None:
                nonlocal position
                while True:
                    entries = await read_after(reader, position, 100, 2000)
                    if entries:
                        position = entries[-1][0]

            task = asyncio.create_task(follow())
            await asyncio.sleep(random.random() * 0.01)
            await asyncio.wait_for(cancel_and_wait([task], retry_s=0.05), 5)
            assert task.cancelled()
        await reader.aclose()
    finally:  # the writer loops on Redis too: one cancel may be dropped
        await asyncio.wait_for(cancel_and_wait([writer], retry_s=0.05), 5)


async def test_stray_tells_an_escaped_inner_cancellation_from_a_real_one() -> None:
    seen: list[bool] = []

    async def escaped() -> None:
        inner = asyncio.get_running_loop().create_future()
        inner.cancel()  # a library cancels its own inner work, and lets it escape
        try:
            await inner
        except asyncio.CancelledError:
            seen.append(stray())

    async def cancelled() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            seen.append(stray())
            raise

    await asyncio.create_task(escaped())
    task = asyncio.create_task(cancelled())
    await asyncio.sleep(0)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert seen == [True, False]


async def test_background_stop_ends_a_loop_whose_every_cancellation_is_dropped() -> None:
    loop = Background()
    running = asyncio.Event()
    ended = asyncio.Event()

    async def run() -> None:
        while not loop.stopping:
            running.set()
            try:
                await asyncio.sleep(0.01)
            except asyncio.CancelledError:
                task = asyncio.current_task()
                assert task is not None
                task.uncancel()  # dropped, as asyncio.wait_for can on 3.11
        ended.set()

    loop.start(run(), "dropping")
    await running.wait()
    # Cancelling alone would never end it; the stopping flag does, at its next turn.
    await asyncio.wait_for(loop.stop(), 5.0)
    assert ended.is_set()
