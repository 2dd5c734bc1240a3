"""Exactly once across a crash: kill -9 the ingest process mid-stream while a device
keeps sending; a fresh ingest on the same port takes over; the device reconnects and
resends. Every batch must then have exactly one effect in Redis."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from grpc import aio
from redis.asyncio import Redis
from vigil.v1 import common_pb2, ingest_pb2

from services.common import keys
from services.common.auth import device_token
from services.common.bootstrap import health_check
from services.common.embedded_redis import free_port
from services.common.timeconv import from_seconds
from services.simulator.device import Device
from tests.support.services import running

ROOT = Path(__file__).resolve().parents[2]
BATCHES = 600
READINGS = 10
KILL_AFTER = 200  # acked batches before the kill
RULES = """\
episodes: {quiet_readings: 1}
defaults: {model: off, missing: off}
devices: {offline: off}
sensors:
  temperature:
    thresholds: [{above: 100, severity: critical}]
"""


@contextmanager
def ingest_process(env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "services.cli", "serve", "ingest"],
        env={**os.environ, **env},
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(10)


async def until_serving(target: str, process: subprocess.Popen[bytes]) -> None:
    for _ in range(300):
        assert process.poll() is None, "ingest exited during start-up"
        if await health_check(target, timeout_s=0.5):
            return
        await asyncio.sleep(0.05)  # readiness poll: gRPC health has no push
    raise AssertionError("ingest did not become healthy")


def batch_readings(seq: int, start: float) -> list[common_pb2.Reading]:
    """Odd batches open an episode (critical), even ones resolve it: one alert each."""
    base = start + seq
    hot = seq % 2 == 1
    readings = [
        common_pb2.Reading(
            sensor="temperature", value=150.0 if hot else 20.0, time=from_seconds(base)
        )
    ]
    readings += [
        common_pb2.Reading(sensor="load", value=float(i), time=from_seconds(base + i / 100))
        for i in range(1, READINGS)
    ]
    return readings


@pytest.mark.timeout(120)
async def test_kill_9_mid_stream_then_every_reading_has_exactly_one_effect(
    base_env: dict[str, str], device_secret: str, redis: Redis, tmp_path: Path
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    async with running("detector", {**base_env, "VIGIL_RULES": str(rules)}) as detector:
        port = free_port()
        target = f"127.0.0.1:{port}"
        env = {
            **base_env,
            "VIGIL_DETECTOR_ADDRS": f"127.0.0.1:{detector.grpc_port}",
            "VIGIL_GRPC_PORT": str(port),
            "VIGIL_METRICS_PORT": "0",
            "VIGIL_HISTORY_RESOLUTION_SECONDS": "0",
            "VIGIL_LOG_LEVEL": "warning",
        }
        start = time.time()  # readings must be near the server's clock
        acked = asyncio.Event()
        count = 0

        def on_ack(_: ingest_pb2.Ack) -> None:
            nonlocal count
            count += 1
            if count >= KILL_AFTER:
                acked.set()

        with ingest_process(env) as first:
            await until_serving(target, first)
            async with aio.insecure_channel(target) as channel:
                device = Device(
                    channel,
                    "kiln-9",
                    device_token(device_secret, "kiln-9"),
                    {"site": "plant-north"},
                    on_ack=on_ack,
                )
                await device.start()

                async def send_all() -> None:
                    for seq in range(1, BATCHES + 1):
                        await device.send(batch_readings(seq, start))

                sender = asyncio.create_task(send_all())
                await asyncio.wait_for(acked.wait(), 60)
                first.send_signal(signal.SIGKILL)
                first.wait(10)
                with ingest_process(env) as second:
                    await until_serving(target, second)
                    await asyncio.wait_for(sender, 90)
                    await asyncio.wait_for(device.drain(), 90)
                    stats = device.stats
                    await device.close()
    assert stats.acked == BATCHES
    assert stats.resent >= 1, "the kill should have caught batches in flight"
    assert stats.reconnects >= 1

    entries = await redis.xrange(keys.EVENTS)
    alerts = [json.loads(f["data"]) for _, f in entries if f["kind"] == "alert"]
    assert len(alerts) == BATCHES  # one alert per batch: opened, resolved, opened, ...
    assert [a["state"] for a in alerts] == ["opened", "resolved"] * (BATCHES // 2)
    assert len({a["episode_id"] for a in alerts}) == BATCHES // 2
    assert await redis.zcard(keys.QUEUE) == BATCHES // 2  # one analysis job per episode

    history = await redis.xrange(keys.history("kiln-9"))
    rows = [row for _, fields in history for row in json.loads(fields["readings"])]
    assert len(history) == BATCHES
    assert len(rows) == BATCHES * READINGS
    stamps = [(sensor, t) for sensor, t, _ in rows]
    assert len(set(stamps)) == len(stamps)  # no reading twice

    counters = [k async for k in redis.scan_iter(match=keys.readings_counter(0)[:-1] + "*")]
    assert sum([int(await redis.get(k) or 0) for k in counters]) == BATCHES * READINGS
    assert await redis.zcard(keys.seen("kiln-9")) == BATCHES
