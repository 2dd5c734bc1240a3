"""The detector service on a real gRPC server and a real Redis: hot reload, snapshots,
offline alerts from the sweep, operator feedback, the Detect contract."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import grpc
import pytest
from grpc import aio
from redis.asyncio import Redis
from vigil.v1 import detector_pb2, detector_pb2_grpc

from services.common import keys
from services.common.bootstrap import Running
from services.common.events import publish
from services.detector.model import STATE_FIELDS
from services.detector.server import DetectorApp
from tests.support.services import running

RULES = """\
defaults: {model: off}
sensors:
  temperature:
    thresholds:
      - {above: 100, severity: critical}
"""


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@asynccontextmanager
async def detector(
    base_env: dict[str, str], **env: str
) -> AsyncIterator[tuple[Running, detector_pb2_grpc.DetectorStub]]:
    env = {**base_env, "VIGIL_SWEEP_SECONDS": "3600", **env}
    async with (
        running("detector", env) as svc,
        aio.insecure_channel(f"127.0.0.1:{svc.grpc_port}") as channel,
    ):
        yield svc, detector_pb2_grpc.DetectorStub(channel)


def app_of(service: Running) -> DetectorApp:
    assert isinstance(service.app, DetectorApp)
    return service.app


def batch(device: str, seq: int, *rows: tuple[str, float, float]) -> detector_pb2.DeviceBatch:
    return detector_pb2.DeviceBatch(
        device_id=device,
        seq=seq,
        sensors=[r[0] for r in rows],
        times=[r[1] for r in rows],
        values=[r[2] for r in rows],
    )


async def detect(
    stub: detector_pb2_grpc.DetectorStub, *batches: detector_pb2.DeviceBatch
) -> list[detector_pb2.BatchResult]:
    response = await stub.Detect(detector_pb2.DetectRequest(batches=batches), timeout=10)
    return list(response.results)


async def test_hot_reload_without_dropping_a_reading(
    base_env: dict[str, str], redis: Redis, tmp_path: Path
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    env = {"VIGIL_RULES": str(rules), "VIGIL_RULES_POLL_SECONDS": "0.02"}
    async with detector(base_env, **env) as (service, stub):
        app = app_of(service)
        assert app.watcher is not None
        sent = 0
        flagged: list[bool] = []
        stop = asyncio.Event()
        progress = asyncio.Condition()

        async def stream() -> None:
            nonlocal sent
            seq = 0
            while not stop.is_set():
                seq += 1
                [result] = await detect(stub, batch("oven", seq, ("temperature", seq, 90.0)))
                async with progress:
                    sent += 1
                    flagged.append(bool(result.anomalies))
                    progress.notify_all()

        sender = asyncio.create_task(stream())
        async with progress:
            await progress.wait_for(lambda: sent >= 50)
        app.watcher.changed.clear()
        rules.write_text(RULES.replace("above: 100", "above: 80"))
        await asyncio.wait_for(app.watcher.changed.wait(), 10)
        before_reload = sent
        async with progress:
            await progress.wait_for(lambda: sent >= before_reload + 50)
        stop.set()
        await sender
    model_n = app.detector.devices["oven"].series["temperature"].model.n
    assert model_n == sent  # every reading was judged, once
    assert flagged[: before_reload - 1] == [False] * (before_reload - 1)
    assert all(flagged[before_reload + 1 :])  # the new rules from the next reading on


async def test_invalid_rules_file_is_rejected_and_the_old_rules_stay(
    base_env: dict[str, str], redis: Redis, tmp_path: Path
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    env = {"VIGIL_RULES": str(rules), "VIGIL_RULES_POLL_SECONDS": "0.02"}
    async with detector(base_env, **env) as (service, stub):
        app = app_of(service)
        assert app.watcher is not None
        app.watcher.changed.clear()
        rules.write_text(RULES.replace("severity: critical", "severity: urgent"))
        await asyncio.wait_for(app.watcher.changed.wait(), 10)
        assert app.watcher.last_error == (
            f"{rules}:5: sensors.temperature.thresholds[0].severity: "
            "must be one of info, warning, critical"
        )
        [result] = await detect(stub, batch("oven", 1, ("temperature", 1.0, 120.0)))
        assert [a.severity for a in result.anomalies] == [3]  # old rules in force


async def test_bad_rules_file_at_start_stops_the_service(
    base_env: dict[str, str], tmp_path: Path
) -> None:
    from services.common.errors import ConfigError

    rules = tmp_path / "rules.yaml"
    rules.write_text("sensors:\n  t: {thresholds: [{below: x, severity: info}]}\n")
    with pytest.raises(ConfigError, match=r"rules\.yaml:2: sensors\.t\.thresholds\[0\]\.below"):
        async with detector(base_env, VIGIL_RULES=str(rules)):
            pass


async def test_restarted_shard_resumes_its_baselines(
    base_env: dict[str, str], redis: Redis
) -> None:
    readings = [("flow", 60.0 * i, 20.0 + (i % 7) * 0.1) for i in range(400)]
    async with detector(base_env, VIGIL_DETECTOR_SHARD="s1") as (service, stub):
        await detect(stub, *(batch("pump", i + 1, r) for i, r in enumerate(readings)))
    assert await redis.hlen(keys.detector_state("s1")) == 1  # saved on shutdown
    spike = batch("pump", 401, ("flow", 60.0 * 400, 35.0))
    async with detector(base_env, VIGIL_DETECTOR_SHARD="s1") as (service, stub):
        restored = app_of(service).detector.devices["pump"].series["flow"].model
        assert restored.n == 400
        [result] = await detect(stub, spike)
        assert result.anomalies and result.anomalies[0].severity >= 2
    async with detector(base_env, VIGIL_DETECTOR_SHARD="fresh") as (service, stub):
        [result] = await detect(stub, spike)
        assert not result.anomalies  # a shard without the baseline is still warming up


async def test_periodic_snapshots_only_write_changed_devices(
    base_env: dict[str, str], redis: Redis
) -> None:
    async with detector(base_env, VIGIL_DETECTOR_SHARD="s2") as (service, stub):
        app = app_of(service)
        await detect(stub, batch("a", 1, ("x", 1.0, 1.0)), batch("b", 1, ("x", 1.0, 1.0)))
        assert await app.snapshots.save() == 2
        assert await app.snapshots.save() == 0
        await detect(stub, batch("a", 2, ("x", 2.0, 1.0)))
        assert await app.snapshots.save() == 1


async def test_offline_device_is_published_by_the_sweep_and_resolves(
    base_env: dict[str, str], redis: Redis
) -> None:
    async with detector(base_env) as (service, stub):
        app = app_of(service)
        clock = Clock()
        app.detector.clock = clock
        for seq in range(1, 11):  # a batch every 10 s
            clock.now += 10
            await detect(stub, batch("kiln", seq, ("temperature", clock.now, 50.0)))
        clock.now += 60  # 6x the learned cadence; the default rule says 5x
        assert await app.sweeper.sweep() == 1
        [(_, fields)] = await redis.xrange(keys.EVENTS)
        alert = json.loads(fields["data"])
        assert (alert["kind"], alert["state"], alert["device_id"]) == ("alert", "opened", "kiln")
        assert (alert["sensor"], alert["severity"]) == ("", "warning")
        assert alert["reasons"] == ["no data for 1 min (it usually reports every 10 s)"]
        [job_id] = await redis.zrange(keys.QUEUE, 0, -1)
        assert job_id == f"alert:{alert['episode_id']}:2"
        assert await app.sweeper.sweep() == 0  # one alert per silence
        clock.now += 5
        [result] = await detect(stub, batch("kiln", 11, ("temperature", clock.now, 50.0)))
        [change] = result.episodes
        assert change.kind == detector_pb2.EpisodeChange.RESOLVED
        assert change.episode_id == alert["episode_id"]


async def test_false_alarm_ack_widens_the_series_tolerance(
    base_env: dict[str, str], redis: Redis
) -> None:
    async with detector(base_env, VIGIL_DETECTOR_SHARD="s3") as (service, stub):
        app = app_of(service)
        await detect(stub, batch("mill", 1, ("vibration", 1.0, 2.0)))
        await publish(
            redis,
            {
                "kind": "ack",
                "alert_id": "ep-1",
                "episode_id": "ep-1",
                "device_id": "mill",
                "sensor": "vibration",
                "severity": "warning",
                "false_alarm": True,
                "note": "belt replaced",
                "by": "ana",
                "time": "2026-01-01T00:00:00.000Z",
            },
        )
        await asyncio.wait_for(app.feedback.applied.wait(), 10)
        series = app.detector.devices["mill"].series["vibration"]
        assert series.model.tolerance == 1.25
    saved = json.loads(await redis.hget(keys.detector_state("s3"), "mill") or "{}")
    state = saved["series"]["vibration"]["model"]
    assert state[1 + STATE_FIELDS.index("tolerance")] == 1.25  # persisted with the baseline


async def test_detect_accepts_messages_and_columns_and_refuses_bad_columns(
    base_env: dict[str, str], redis: Redis
) -> None:
    from vigil.v1 import common_pb2

    from services.common.timeconv import from_seconds

    async with detector(base_env) as (service, stub):
        as_messages = detector_pb2.DeviceBatch(
            device_id="d",
            seq=1,
            readings=[
                common_pb2.Reading(sensor="temperature", value=130.0, time=from_seconds(5.0))
            ],
        )
        [result] = await detect(stub, as_messages)
        assert result.anomalies[0].reasons == ["value 130 above critical threshold 95"]
        bad = detector_pb2.DeviceBatch(device_id="d", seq=2, sensors=["t"], times=[1.0])
        with pytest.raises(aio.AioRpcError) as failure:
            await detect(stub, bad)
        assert failure.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert failure.value.details() == "batches[0]: sensors, times and values differ in length"
        nan = batch("d", 3, ("t", 1.0, 1.0))
        nan.values[0] = float("nan")
        fine = batch("e", 1, ("t", 1.0, 1.0))
        with pytest.raises(aio.AioRpcError) as failure:
            await detect(stub, fine, nan)
        assert failure.value.details() == "batches[1]: times and values must be finite"
        assert "e" not in app_of(service).detector.devices  # the bad request judged nothing
        infinite = detector_pb2.DeviceBatch(
            device_id="d",
            seq=4,
            readings=[
                common_pb2.Reading(sensor="temperature", value=float("inf"), time=from_seconds(6))
            ],
        )
        with pytest.raises(aio.AioRpcError) as failure:  # messages are checked like columns
            await detect(stub, infinite)
        assert failure.value.details() == "batches[0]: times and values must be finite"
