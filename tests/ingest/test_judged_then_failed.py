"""When judging a batch fails, the batches the detector already judged are committed
and acked before the stream ends.

The detector's state has moved past them: a restarted detector would not report
their episode changes again when the device resends them, so a batch judged but
dropped at the end of a stream was an alert lost (resolved later, never opened).
Here Redis holds ingest's commits back (CLIENT PAUSE) while batch 1 commits and batch 2
(which opens an episode) waits behind it; then the detector stops, so batch 3
cannot be judged.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import grpc
from grpc import aio
from redis.asyncio import Redis
from vigil.v1 import ingest_pb2

from services.cli import registry
from services.common import keys
from services.common.bootstrap import start
from services.detector.server import DetectorApp
from tests.ingest.test_limits import final_status
from tests.support.clients import batch as device_batch
from tests.support.clients import device_stream, reading, token_for
from tests.support.services import running

RULES = """\
episodes: {quiet_readings: 1}
defaults: {model: off, missing: off}
devices: {offline: off}
sensors:
  temperature:
    thresholds: [{above: 100, severity: critical}]
"""


def batch(seq: int, value: float) -> ingest_pb2.DeviceMessage:
    return device_batch(seq, [reading("temperature", value, time.time())])


async def test_batches_judged_before_a_failed_detect_are_committed_and_acked(
    base_env: dict[str, str], device_secret: str, redis: Redis, tmp_path: Path
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    settings_factory, app_factory = registry.load("detector")
    settings = settings_factory(
        {**base_env, "VIGIL_HOST": "127.0.0.1", "VIGIL_GRPC_PORT": "0",
         "VIGIL_METRICS_PORT": "0", "VIGIL_SHUTDOWN_GRACE_SECONDS": "1",
         "VIGIL_RULES": str(rules)}
    )  # fmt: skip
    detector = await start("detector", settings, app_factory)
    assert isinstance(detector.app, DetectorApp)
    engine = detector.app.detector
    env = {**base_env, "VIGIL_DETECTOR_ADDRS": f"127.0.0.1:{detector.grpc_port}"}
    stopped = False
    try:
        async with (
            running("ingest", env) as ingest,
            device_stream(f"127.0.0.1:{ingest.grpc_port}", token_for(device_secret, "oven")) as dev,
        ):
            await dev.hello("oven")
            await redis.execute_command("CLIENT", "PAUSE", 1500, "WRITE")  # commits wait
            await dev.call.write(batch(1, 20.0))
            await dev.call.write(batch(2, 150.0))  # opens a critical episode
            for _ in range(1000):  # the detector's progress has no event to await
                if "oven" in engine.devices and engine.devices["oven"].last_seq >= 2:
                    break
                await asyncio.sleep(0.005)
            await detector.stop()  # batch 3 cannot be judged now
            stopped = True
            await dev.call.write(batch(3, 20.0))
            acked = []
            try:
                while (reply := await dev.call.read()) is not aio.EOF:
                    if reply.WhichOneof("kind") == "ack":
                        acked.append(reply.ack.seq)
            except aio.AioRpcError:
                pass  # the stream's end: its status is read below
            code, details = await final_status(dev.call)
    finally:
        if not stopped:
            await detector.stop()
    assert acked == [1, 2]
    assert code == grpc.StatusCode.UNAVAILABLE and details.startswith("detector"), details
    alerts = [
        json.loads(f["data"]) for _, f in await redis.xrange(keys.EVENTS) if f["kind"] == "alert"
    ]
    assert [(a["state"], a["severity"]) for a in alerts] == [("opened", "critical")]
