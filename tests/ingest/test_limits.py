"""Ingest's limits on a real server: each refusal is a clear status and a metric."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import grpc
import pytest
from grpc import aio
from prometheus_client import REGISTRY
from redis.asyncio import Redis

from services.common.auth import device_token
from services.common.bootstrap import Running
from services.ingest.flow import FlowController
from services.ingest.server import IngestApp
from services.simulator.device import Device
from tests.support.clients import batch, device_stream, hello, reading, stream_status, token_for
from tests.support.services import running


@asynccontextmanager
async def ingest(base_env: dict[str, str], **env: str) -> AsyncIterator[tuple[str, Running]]:
    async with running("detector", base_env) as detector:
        merged = {**base_env, "VIGIL_DETECTOR_ADDRS": f"127.0.0.1:{detector.grpc_port}", **env}
        async with running("ingest", merged) as service:
            yield f"127.0.0.1:{service.grpc_port}", service


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


class Counted:
    """The change of a metric sample across a block."""

    def __init__(self, name: str, **labels: str) -> None:
        self.name, self.labels = name, labels
        self.before = sample(name, **labels)

    @property
    def delta(self) -> float:
        return sample(self.name, **self.labels) - self.before


async def final_status(stream: aio.StreamStreamCall) -> tuple[grpc.StatusCode, str]:
    """Read to the end of the stream; its status."""
    try:
        while (await stream.read()) is not aio.EOF:
            pass
    except aio.AioRpcError as exc:
        return exc.code(), exc.details() or ""
    return await stream.code(), await stream.details() or ""


async def test_device_over_its_window_is_throttled_then_cut_off(
    base_env: dict[str, str], device_secret: str, redis: Redis
) -> None:
    throttled = Counted("vigil_ingest_limit_total", limit="window", action="throttled")
    refused = Counted("vigil_ingest_limit_total", limit="window", action="refused")
    env = {"VIGIL_MAX_IN_FLIGHT": "1", "VIGIL_WINDOW_STRIKES": "2"}
    # It ignores Flow: thirty batches written without waiting for acks. The
    # synchronous client, since the stream ends while its writes are in flight (see
    # `run_stream`): the asyncio client can report its own INTERNAL instead.
    messages = [hello("rude")] + [batch(seq, [reading("t", 1.0)]) for seq in range(1, 31)]
    async with ingest(base_env, **env) as (target, _):
        code, details, _ = await stream_status(target, token_for(device_secret, "rude"), messages)
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert details.startswith("more than 1 unacknowledged batches in flight")
    assert "honour Flow.max_in_flight" in details
    assert throttled.delta == 2 and refused.delta == 1


async def test_well_behaved_device_never_trips_its_window(
    base_env: dict[str, str], device_secret: str, redis: Redis
) -> None:
    strikes = Counted("vigil_ingest_limit_total", limit="window", action="throttled")
    async with (
        ingest(base_env, VIGIL_MAX_IN_FLIGHT="2") as (target, _),
        aio.insecure_channel(target) as channel,
    ):
        device = Device(channel, "polite", device_token(device_secret, "polite"))
        await device.start()
        for _ in range(60):
            await device.send([reading("t", 1.0)])
        await device.drain()
        await device.close()
    assert device.stats.acked == 60 and device.stats.reconnects == 0
    assert strikes.delta == 0


async def test_lowered_window_reaches_connected_devices_and_is_obeyed(
    base_env: dict[str, str], device_secret: str, redis: Redis
) -> None:
    async with ingest(base_env, VIGIL_MAX_IN_FLIGHT="8") as (target, service):
        assert isinstance(service.app, IngestApp)
        flow = service.app.parts.flow
        async with aio.insecure_channel(target) as channel:
            device = Device(channel, "obedient", device_token(device_secret, "obedient"))
            await device.start()
            assert device.max_in_flight == 8
            flow.observe(10.0)  # the stages behind ingest are far behind the target
            flow._changed_at = -1e9  # no rate limit on this first change
            assert flow.decide() == 4
            for _ in range(200):  # the Flow message is on its way to the device
                if device.max_in_flight == 4:
                    break
                await asyncio.sleep(0.005)
            assert device.stats.flows[-1] == 4
            for _ in range(40):
                await device.send([reading("t", 1.0)])
                assert len(device.outbox) <= 4
            await device.drain()
            await device.close()


def test_flow_policy_halves_under_pressure_and_recovers_step_by_step() -> None:
    now = [0.0]
    backlog = [0]
    flow = FlowController(16, 0.1, lambda: backlog[0], clock=lambda: now[0])
    told: list[int] = []
    flow.listen(told.append)
    flow.observe(1.0)
    assert flow.decide() == 8
    assert flow.decide() == 8  # at most one change a second
    now[0] += 1.0
    assert flow.decide() == 4
    backlog[0] = 0
    flow.latency_s = 0.01
    for _ in range(20):
        now[0] += 1.0
        flow.decide()
    assert flow.window == 16  # +1 a second, back to the maximum
    backlog[0] = 10_000
    flow.latency_s = 0.0
    now[0] += 1.0
    assert flow.decide() == 8  # a backlog alone also halves it
    assert told[:3] == [8, 4, 5]


async def test_device_over_its_readings_rate(
    base_env: dict[str, str], device_secret: str, redis: Redis
) -> None:
    throttled = Counted("vigil_ingest_limit_total", limit="rate", action="throttled")
    env = {"VIGIL_DEVICE_MAX_READINGS_PER_SECOND": "100"}  # bursts of 200
    async with (
        ingest(base_env, **env) as (target, _),
        device_stream(target, token_for(device_secret, "fast")) as dev,
    ):
        await dev.hello("fast")
        started = time.monotonic()
        assert (await dev.send(1, [reading("t", 1.0)] * 150)).seq == 1
        assert (await dev.send(2, [reading("t", 1.0)] * 100)).seq == 2  # 50 over: 0.5 s
        assert time.monotonic() - started >= 0.45
        assert throttled.delta == 1
        with pytest.raises(aio.AioRpcError) as failure:
            await dev.send(3, [reading("t", 1.0)] * 400)  # 4 s over: refused
    assert failure.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert failure.value.details() == "over 100 readings per second"
    retry = dict(failure.value.trailing_metadata() or ())["retry-after"]
    assert 3.5 < float(retry) < 4.5


async def test_streams_beyond_the_limit_are_refused(
    base_env: dict[str, str], device_secret: str, redis: Redis
) -> None:
    refused = Counted("vigil_ingest_limit_total", limit="streams", action="refused")
    async with (
        ingest(base_env, VIGIL_MAX_STREAMS="1") as (target, _),
        device_stream(target, token_for(device_secret, "one")) as first,
    ):
        await first.hello("one")
        async with device_stream(target, token_for(device_secret, "two")) as second:
            with pytest.raises(aio.AioRpcError) as failure:
                await second.hello("two")
        assert (await first.send(1, [reading("t", 1.0)])).seq == 1  # unharmed
    assert failure.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert failure.value.details() == "this ingest serves 1 streams already"
    assert refused.delta == 1


async def test_idle_stream_is_ended(
    base_env: dict[str, str], device_secret: str, redis: Redis
) -> None:
    idle = Counted("vigil_ingest_limit_total", limit="idle", action="refused")
    async with (
        ingest(base_env, VIGIL_IDLE_TIMEOUT_SECONDS="0.2") as (target, _),
        device_stream(target, token_for(device_secret, "sleepy")) as dev,
    ):
        await dev.hello("sleepy")
        code, details = await final_status(dev.call)
    assert code == grpc.StatusCode.DEADLINE_EXCEEDED
    assert details == "no message for 0.2 s (idle timeout); reconnect when there is data"
    assert idle.delta == 1


async def test_oversized_message_is_refused(
    base_env: dict[str, str], device_secret: str, redis: Redis
) -> None:
    async with (
        ingest(base_env, VIGIL_MAX_MESSAGE_BYTES="2048") as (target, _),
        device_stream(target, token_for(device_secret, "big")) as dev,
    ):
        await dev.hello("big")
        with pytest.raises(aio.AioRpcError) as failure:
            await dev.send(1, [reading("temperature_sensor_long_name", 1.0)] * 100)
        # The server stays up for everyone else.
        async with device_stream(target, token_for(device_secret, "small")) as other:
            await other.hello("small")
            assert (await other.send(1, [reading("t", 1.0)])).seq == 1
    assert failure.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "larger than max" in (failure.value.details() or "")


async def test_detector_down_is_unavailable(
    base_env: dict[str, str], device_secret: str, redis: Redis
) -> None:
    from services.common.embedded_redis import free_port

    env = {
        **base_env,
        "VIGIL_DETECTOR_ADDRS": f"127.0.0.1:{free_port()}",
        "VIGIL_DETECT_TIMEOUT_SECONDS": "0.5",
    }
    async with running("ingest", env) as service:
        target = f"127.0.0.1:{service.grpc_port}"
        async with device_stream(target, token_for(device_secret, "lonely")) as dev:
            await dev.hello("lonely")
            with pytest.raises(aio.AioRpcError) as failure:
                await dev.send(1, [reading("t", 1.0)])
    assert failure.value.code() == grpc.StatusCode.UNAVAILABLE
    assert (failure.value.details() or "").startswith("detector 127.0.0.1:")


@pytest.mark.timeout(60)
async def test_client_pinging_too_often_is_sent_away(
    base_env: dict[str, str], device_secret: str, redis: Redis
) -> None:
    """Keepalive enforcement lives in gRPC: the connection gets GOAWAY too_many_pings."""
    pinger = [
        ("grpc.keepalive_time_ms", 100),
        ("grpc.keepalive_timeout_ms", 1000),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
        ("grpc.http2.min_time_between_pings_ms", 100),
        ("grpc.http2.min_ping_interval_without_data_ms", 100),
    ]
    async with ingest(base_env, VIGIL_MIN_CLIENT_PING_SECONDS="30") as (target, _):
        channel = aio.insecure_channel(target, options=pinger)
        try:
            async with device_stream(target, token_for(device_secret, "pinger"), channel) as dev:
                await dev.hello("pinger")
                code, details = await asyncio.wait_for(final_status(dev.call), 30)
        finally:
            await channel.close()
    assert code == grpc.StatusCode.UNAVAILABLE
    assert details == "Too many pings"
