"""What ingest writes besides alerts: history, device presence, the readings counter; and
that concurrent batches of many devices share detector calls and Redis round trips."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

import pytest
from grpc import aio
from prometheus_client import REGISTRY
from redis.asyncio import Redis

from services.common import keys
from services.common.auth import device_token
from services.simulator.device import Device
from tests.support.clients import device_stream, reading, token_for
from tests.support.services import running


@pytest.fixture
async def ingest(base_env: dict[str, str], redis: Redis) -> AsyncIterator[str]:
    async with running("detector", base_env) as detector:
        env = {**base_env, "VIGIL_DETECTOR_ADDRS": f"127.0.0.1:{detector.grpc_port}"}
        async with running("ingest", env) as service:
            yield f"127.0.0.1:{service.grpc_port}"


async def device_events(redis: Redis, device_id: str) -> list[dict[str, object]]:
    return [
        json.loads(fields["data"])
        for _, fields in await redis.xrange(keys.EVENTS)
        if fields["kind"] == "device" and fields["device"] == device_id
    ]


async def test_history_keeps_one_reading_a_second_per_sensor_and_every_anomaly(
    ingest: str, device_secret: str, redis: Redis
) -> None:
    t0 = float(int(time.time()))
    readings = [reading("load", float(i), t0 + i / 10) for i in range(25)]
    readings += [
        reading("pressure", 5.0, t0 + 0.55),
        reading("pressure", 9.5, t0 + 0.65),  # critical: kept although 0.1 s later
        reading("pressure", 5.1, t0 + 0.75),  # normal, same second: thinned out
    ]
    async with device_stream(ingest, token_for(device_secret, "hist")) as dev:
        await dev.hello("hist")
        await dev.send(1, readings)
        await dev.send(2, [reading("load", 20.5, t0 + 2.05)])  # nothing new to keep
        await dev.send(3, [reading("load", 98.0, t0 + 3.5)])
    entries = [
        json.loads(fields["readings"]) for _, fields in await redis.xrange(keys.history("hist"))
    ]
    assert entries == [
        [
            ["load", t0, 0.0],
            ["load", t0 + 1.0, 10.0],
            ["load", t0 + 2.0, 20.0],
            ["pressure", round(t0 + 0.55, 3), 5.0],
            ["pressure", round(t0 + 0.65, 3), 9.5],
        ],
        [["load", t0 + 3.5, 98.0]],
    ]


async def test_device_is_online_while_connected_then_offline(
    ingest: str, device_secret: str, redis: Redis
) -> None:
    async with device_stream(ingest, token_for(device_secret, "press-1")) as dev:
        await dev.hello("press-1", {"site": "north"})
        online = json.loads(await redis.hget(keys.DEVICES, "press-1") or "{}")
        assert (online["status"], online["labels"]) == ("online", {"site": "north"})
        assert online["device_id"] == "press-1"
        assert online["connected_at"].endswith("Z") and online["last_seen"].endswith("Z")
        await dev.send(1, [reading("t", 1.0)])
        await dev.call.done_writing()
        assert await dev.call.read() is aio.EOF
    events = await device_events(redis, "press-1")
    assert [e["status"] for e in events] == ["online", "offline"]
    assert events[0]["labels"] == {"site": "north"} and events[0]["severity"] is None
    offline = json.loads(await redis.hget(keys.DEVICES, "press-1") or "{}")
    assert offline["status"] == "offline"


async def test_an_old_stream_ending_does_not_mark_a_reconnected_device_offline(
    ingest: str, device_secret: str, redis: Redis
) -> None:
    token = token_for(device_secret, "flaky")
    async with device_stream(ingest, token) as old:
        await old.hello("flaky")
        async with device_stream(ingest, token) as new:
            await new.hello("flaky")
            await old.call.done_writing()
            assert await old.call.read() is aio.EOF  # the old stream is over
            record = json.loads(await redis.hget(keys.DEVICES, "flaky") or "{}")
            assert record["status"] == "online"
            assert [e["status"] for e in await device_events(redis, "flaky")] == [
                "online",
                "online",
            ]


async def test_readings_counter_per_second_expires(
    ingest: str, device_secret: str, redis: Redis
) -> None:
    async with device_stream(ingest, token_for(device_secret, "count")) as dev:
        await dev.hello("count")
        for seq in range(1, 4):
            await dev.send(seq, [reading("t", 1.0)] * 7)
    counters = [k async for k in redis.scan_iter(match=keys.READINGS_COUNTER_PREFIX + "*")]
    assert counters
    assert sum([int(await redis.get(k) or 0) for k in counters]) == 21
    for key in counters:
        assert 0 < await redis.ttl(key) <= 120
        assert abs(int(key.rsplit(":", 1)[1]) - time.time()) < 60


async def test_batches_of_many_devices_share_detector_calls_and_redis_round_trips(
    ingest: str, device_secret: str, redis: Redis
) -> None:
    def calls(stage: str) -> tuple[float, float]:
        labels = {"stage": stage}
        count = REGISTRY.get_sample_value("vigil_ingest_coalesced_items_count", labels) or 0.0
        items = REGISTRY.get_sample_value("vigil_ingest_coalesced_items_sum", labels) or 0.0
        return count, items

    before = {stage: calls(stage) for stage in ("detect", "commit")}
    devices = 60
    async with aio.insecure_channel(ingest) as channel:
        fleet = [
            Device(channel, f"m-{i}", device_token(device_secret, f"m-{i}")) for i in range(devices)
        ]
        await asyncio.gather(*(d.start() for d in fleet))
        for _ in range(3):
            await asyncio.gather(*(d.send([reading("t", 1.0)] * 10) for d in fleet))
        await asyncio.gather(*(d.drain() for d in fleet))
        for device in fleet:
            await device.close()
    for stage in ("detect", "commit"):
        count = calls(stage)[0] - before[stage][0]
        items = calls(stage)[1] - before[stage][1]
        assert items == 3 * devices
        assert count < items / 2, (stage, count, items)  # batches travel together


async def test_sequence_gaps_and_regressions_are_counted_not_refused(
    ingest: str, device_secret: str, redis: Redis
) -> None:
    def seen(kind: str) -> float:
        return REGISTRY.get_sample_value("vigil_ingest_sequence_total", {"kind": kind}) or 0.0

    gaps, regressions = seen("gap"), seen("regression")
    async with device_stream(ingest, token_for(device_secret, "seq")) as dev:
        await dev.hello("seq")
        for seq in (1, 2, 5, 3):
            assert (await dev.send(seq, [reading("t", 1.0)])).seq == seq
    assert seen("gap") - gaps == 1
    assert seen("regression") - regressions == 1
    assert await redis.zcard(keys.seen("seq")) == 4


async def test_a_restarted_device_is_not_mistaken_for_a_resend(
    ingest: str, device_secret: str, redis: Redis
) -> None:
    token = device_token(device_secret, "reboot")
    async with aio.insecure_channel(ingest) as channel:
        for _ in range(2):  # the same device id, a fresh client (a reboot) each time
            device = Device(channel, "reboot", token)
            await device.start()
            for _ in range(3):
                await device.send([reading("t", 1.0)])
            await device.drain()
            await device.close()
    assert await redis.zcard(keys.seen("reboot")) == 6  # no batch was taken for a resend
    assert await redis.xlen(keys.history("reboot")) >= 2
