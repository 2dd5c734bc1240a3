"""A draining ingest refuses the devices that come back until they stop coming.

The devices whose streams the drain ended reconnect within moments. Were the gRPC
server to stop among them, a stream it had accepted but not yet handed to ingest would
end CANCELLED, with no word of why or when to come back (6 of 50 devices in the SIGTERM
chaos test, on a loaded machine). So while draining, ingest refuses each new stream
UNAVAILABLE with a `retry-after`, which the reference device obeys, and the drain
returns only once no stream has come for QUIET_S, or SETTLE_MAX_S after its own
streams ended, whichever is first.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest
from grpc import aio
from redis.asyncio import Redis

from services.common.auth import device_token
from services.common.bootstrap import Running
from services.ingest import server
from services.ingest.server import IngestServicer
from services.simulator.device import Device
from tests.support.clients import device_stream, reading
from tests.support.services import running


@pytest.fixture
async def ingest(base_env: dict[str, str], redis: Redis) -> AsyncIterator[Running]:
    async with running("detector", base_env) as detector:
        env = {**base_env, "VIGIL_DETECTOR_ADDRS": f"127.0.0.1:{detector.grpc_port}"}
        async with running("ingest", env) as service:
            yield service


def servicer_of(service: Running) -> IngestServicer:
    servicer = getattr(service.app, "servicer", None)
    assert isinstance(servicer, IngestServicer)
    return servicer


async def open_stream(channel: aio.Channel, token: str) -> aio.AioRpcError:
    """Open a stream and say Hello, as a device does; its refusal. (Ingest reads the
    Hello before it refuses, so the write is not lost in grpcio's write race.)"""
    async with device_stream("", token, channel) as dev:  # on `channel`: no target
        with pytest.raises(aio.AioRpcError) as failure:
            await dev.hello("d-1")
    return failure.value


async def start_draining(servicer: IngestServicer) -> asyncio.Task[None]:
    drain = asyncio.create_task(servicer.drain(10.0))
    await asyncio.sleep(0)  # let it begin: from now on streams are refused
    assert servicer.draining
    return drain


async def test_drain_lasts_while_devices_keep_coming_and_refuses_each_with_a_retry_after(
    ingest: Running, device_secret: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(server, "QUIET_S", 1.0)
    monkeypatch.setattr(server, "SETTLE_MAX_S", 8.0)
    token = device_token(device_secret, "d-1")
    async with aio.insecure_channel(f"127.0.0.1:{ingest.grpc_port}") as channel:
        drain = await start_draining(servicer_of(ingest))
        # A stream every 0.1 s for over twice the quiet period: the drain stays.
        for _ in range(25):
            refusal = await open_stream(channel, token)
            assert refusal.code() == grpc.StatusCode.UNAVAILABLE, refusal.details()
            assert refusal.details() == "ingest is shutting down; reconnect"
            assert dict(refusal.trailing_metadata() or ())["retry-after"] == "1.000"
            assert not drain.done()
            await asyncio.sleep(0.1)  # the pace of the reconnects, not a wait for an event
        # None comes any more: the drain is over within the quiet period.
        await asyncio.wait_for(drain, 5.0)


async def test_drain_ends_within_its_bound_though_devices_never_stop_coming(
    ingest: Running, device_secret: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(server, "QUIET_S", 1.0)
    monkeypatch.setattr(server, "SETTLE_MAX_S", 0.5)
    token = device_token(device_secret, "d-1")
    async with aio.insecure_channel(f"127.0.0.1:{ingest.grpc_port}") as channel:
        drain = await start_draining(servicer_of(ingest))
        for _ in range(100):  # at most 10 s
            if drain.done():
                break
            await open_stream(channel, token)
            await asyncio.sleep(0.1)
        assert drain.done()
        await drain


async def test_a_device_refused_by_a_draining_ingest_waits_its_retry_after(
    ingest: Running, device_secret: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The drain lasts 1.6 s after the device's stream ended. A device that waits the
    # 1 s it is told comes back at most twice in that time (after its first backoff of
    # at most 0.15 s, then 1 s later); one that only backs off (0.1 s doubling, +-50%)
    # comes back at least three times.
    monkeypatch.setattr(server, "QUIET_S", 1.6)
    monkeypatch.setattr(server, "SETTLE_MAX_S", 1.6)
    async with aio.insecure_channel(f"127.0.0.1:{ingest.grpc_port}") as channel:
        device = Device(channel, "d-1", device_token(device_secret, "d-1"))
        await device.start()
        await device.send([reading("t", 1.0)])
        await device.drain()
        await servicer_of(ingest).drain(10.0)
        ended = dict(device.stats.ended)
        await device.close()
    # One end by the drain itself, then the refusals of its reconnects.
    assert ended.keys() == {"UNAVAILABLE"}
    assert 2 <= ended["UNAVAILABLE"] <= 3, ended
