"""The fault proxy itself: it forwards, delays, blackholes, cuts and heals as it says,
against a real echo server on loopback, so the network-fault tests can trust it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from tests.support.faultproxy import FaultProxy


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(1024):
        writer.write(data)
        await writer.drain()
    writer.close()


@pytest.fixture
async def proxy() -> AsyncIterator[FaultProxy]:
    server = await asyncio.start_server(_echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    faulty = FaultProxy("127.0.0.1", port, "echo")
    await faulty.start()
    try:
        yield faulty
    finally:
        await faulty.stop()
        server.close()
        await server.wait_closed()


async def _roundtrip(proxy: FaultProxy, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    try:
        writer.write(data)
        await writer.drain()
        return await asyncio.wait_for(reader.readexactly(len(data)), 5.0)
    finally:
        writer.close()


async def _closed(reader: asyncio.StreamReader) -> bool:
    try:
        return await asyncio.wait_for(reader.read(1), 5.0) == b""
    except ConnectionError:
        return True


async def test_forwards_both_ways_and_counts(proxy: FaultProxy) -> None:
    assert await _roundtrip(proxy, b"hello") == b"hello"
    assert proxy.counters.accepted == 1
    assert proxy.counters.bytes_forwarded == 10


async def test_delay_holds_every_chunk_back_in_order(proxy: FaultProxy) -> None:
    proxy.delay(0.2)
    started = time.monotonic()
    assert await _roundtrip(proxy, b"abc") == b"abc"
    assert time.monotonic() - started >= 0.4  # there and back
    proxy.heal()
    assert proxy.delay_s == 0.0


async def test_blackhole_accepts_but_forwards_nothing_and_heal_resets(
    proxy: FaultProxy,
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    proxy.drop()
    writer.write(b"lost")
    await writer.drain()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(reader.read(4), 0.3)
    assert proxy.counters.bytes_dropped == 4
    proxy.heal()
    assert await _closed(reader)  # reset: the stream had a hole
    writer.close()
    assert await _roundtrip(proxy, b"back") == b"back"


async def test_cut_resets_open_and_new_connections_until_healed(proxy: FaultProxy) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    writer.write(b"x")
    assert await asyncio.wait_for(reader.readexactly(1), 5.0) == b"x"
    proxy.cut()
    assert await _closed(reader)
    writer.close()
    with pytest.raises((ConnectionError, asyncio.IncompleteReadError)):
        await _roundtrip(proxy, b"y")
    proxy.heal()
    assert await _roundtrip(proxy, b"z") == b"z"
    assert proxy.counters.reset >= 2
