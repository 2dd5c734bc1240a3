"""Ingest's device door on a real gRPC server: credentials, validation, isolation."""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator

import grpc
import pytest
from grpc import aio
from redis.asyncio import Redis

from services.common import keys
from tests.support.clients import device_stream, hello, reading, stream_status, token_for
from tests.support.services import running


@pytest.fixture
async def ingest(base_env: dict[str, str], redis: Redis) -> AsyncIterator[str]:
    async with running("detector", base_env) as detector:
        env = {
            **base_env,
            "VIGIL_DETECTOR_ADDRS": f"127.0.0.1:{detector.grpc_port}",
            "VIGIL_MAX_BATCH_READINGS": "50",
        }
        async with running("ingest", env) as service:
            yield f"127.0.0.1:{service.grpc_port}"


async def alerts(redis: Redis) -> list[dict[str, str]]:
    """The `alert` entries of vigil:events (device online/offline events aside)."""
    return [fields for _, fields in await redis.xrange(keys.EVENTS) if fields["kind"] == "alert"]


# A token's form is checked before Hello is read: these refusals end streams whose Hello
# may still be in flight, hence the synchronous client (see `run_stream`).
async def test_missing_token_is_unauthenticated(ingest: str) -> None:
    code, details, _ = await stream_status(ingest, None, [hello("dev-1")])
    assert code == grpc.StatusCode.UNAUTHENTICATED, details


@pytest.mark.parametrize("token", ["nope", "0" * 63, "Z" * 64])
async def test_malformed_token_is_unauthenticated(ingest: str, token: str) -> None:
    code, details, _ = await stream_status(ingest, token, [hello("dev-1")])
    assert code == grpc.StatusCode.UNAUTHENTICATED, details
    assert "token" in details


async def test_token_of_another_device_is_permission_denied(
    ingest: str, device_secret: str
) -> None:
    async with device_stream(ingest, token_for(device_secret, "dev-a")) as dev:
        with pytest.raises(aio.AioRpcError) as failure:
            await dev.hello("dev-b")
    assert failure.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "dev-b" in (failure.value.details() or "")


async def test_batch_before_hello_is_refused(ingest: str, device_secret: str) -> None:
    async with device_stream(ingest, token_for(device_secret, "dev-1")) as dev:
        with pytest.raises(aio.AioRpcError) as failure:
            await dev.send(1, [reading("temperature", 20.0)])
    assert failure.value.code() == grpc.StatusCode.FAILED_PRECONDITION


@pytest.mark.parametrize(
    ("readings", "field"),
    [
        (
            [reading("temperature", 20.0), reading("temperature", math.nan)],
            "batch.readings[1].value",
        ),
        ([reading("temperature", math.inf)], "batch.readings[0].value"),
        ([reading("bad sensor!", 1.0)], "batch.readings[0].sensor"),
        ([reading("temperature", 1.0, at=1.0)], "batch.readings[0].time"),
        ([reading("t", 1.0)] * 51, "batch.readings"),
        ([], "batch.readings"),
    ],
    ids=["nan", "inf", "sensor-name", "ancient-time", "oversized", "empty"],
)
async def test_invalid_batch_names_the_field(
    ingest: str, device_secret: str, redis: Redis, readings: list, field: str
) -> None:
    async with device_stream(ingest, token_for(device_secret, "dev-1")) as dev:
        await dev.hello("dev-1")
        with pytest.raises(aio.AioRpcError) as failure:
            await dev.send(1, readings)
    assert failure.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (failure.value.details() or "").startswith(field + ":")
    assert await alerts(redis) == []
    assert await redis.zcard(keys.seen("dev-1")) == 0


async def test_bad_device_does_not_disturb_another_stream(ingest: str, device_secret: str) -> None:
    async with device_stream(ingest, token_for(device_secret, "good")) as good:
        await good.hello("good")
        assert (await good.send(1, [reading("temperature", 20.0)])).seq == 1
        async with device_stream(ingest, token_for(device_secret, "bad")) as bad:
            await bad.hello("bad")
            with pytest.raises(aio.AioRpcError):
                await bad.send(1, [reading("temperature", math.nan)])
        ack = await good.send(2, [reading("temperature", 99.0)])
        assert ack.seq == 2 and len(ack.anomalies) == 1


async def test_resent_batch_is_acked_without_second_effect(
    ingest: str, device_secret: str, redis: Redis
) -> None:
    token = token_for(device_secret, "dev-r")
    async with device_stream(ingest, token) as dev:
        await dev.hello("dev-r")
        first = await dev.send(7, [reading("temperature", 120.0)])
    async with device_stream(ingest, token) as dev:
        await dev.hello("dev-r")
        again = await dev.send(7, [reading("temperature", 120.0)])
    assert first.seq == again.seq == 7
    assert len(first.anomalies) == 1
    assert len(await alerts(redis)) == 1
    assert await redis.zcard(keys.QUEUE) == 1


async def test_critical_batch_becomes_event_and_job_before_ack(
    ingest: str, device_secret: str, redis: Redis
) -> None:
    async with device_stream(ingest, token_for(device_secret, "dev-c")) as dev:
        await dev.hello("dev-c")
        ack = await dev.send(1, [reading("temperature", 97.5)])
        # The ack is only sent once Redis holds the consequences: read them right away.
        [fields] = await alerts(redis)
        [(job_id, score)] = await redis.zrange(keys.QUEUE, 0, -1, withscores=True)
    assert fields["kind"] == "alert" and fields["device"] == "dev-c" and fields["sev"] == "3"
    assert job_id == f"alert:{ack.anomalies[0].episode_id}:3"
    enqueued_ms = 3 * 10**12 - score  # score = priority * 10^12 - enqueue time (ms)
    assert abs(enqueued_ms - time.time() * 1000) < 60_000


async def test_refusal_of_a_huge_label_key_is_short_and_names_the_field(
    ingest: str, device_secret: str
) -> None:
    """The key is not echoed whole: a 100 KB message would exceed the client's trailer
    limit, and the device would see a transport error instead of the reason."""
    async with device_stream(ingest, token_for(device_secret, "dev-1")) as dev:
        with pytest.raises(aio.AioRpcError) as failure:
            await dev.hello("dev-1", {"k" * 100_000: "v"})
    details = failure.value.details() or ""
    assert failure.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    shown = repr("k" * 64) + "..."
    assert details == f"hello.labels[{shown}]: key must match [A-Za-z0-9_./-]{{1,63}}"
