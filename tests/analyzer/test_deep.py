"""Deep analysis through the gRPC API: validation, tickets, progress events, results."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration
from grpc import aio
from redis.asyncio import Redis
from vigil.v1 import analyzer_pb2, analyzer_pb2_grpc, common_pb2

from services.analyzer.deep import DeepAnalysis
from services.analyzer.settings import AnalyzerSettings
from services.analyzer.tickets import Tickets
from services.common import keys
from services.common.errors import ResourceExhausted
from services.common.queue import JobQueue
from services.common.scripts import Scripts
from tests.analyzer.alerts import wait_events
from tests.support.history import write_history
from tests.support.openai_server import model_env, openai_server
from tests.support.services import running

FAST = {"VIGIL_QUEUE_REAP_SECONDS": "0.1"}


@pytest.fixture
async def stub(redis: Redis, base_env: dict[str, str]) -> AsyncIterator[Any]:
    async with (
        running("analyzer", {**base_env, **FAST}) as service,
        aio.insecure_channel(f"127.0.0.1:{service.grpc_port}") as channel,
    ):
        yield analyzer_pb2_grpc.AnalyzerStub(channel)


def request(device: str = "press-7", seconds: int = 3600, **kw: Any) -> Any:
    return analyzer_pb2.StartAnalysisRequest(
        device_id=device, window=Duration(seconds=seconds), **kw
    )


@pytest.mark.parametrize(
    ("message", "field"),
    [
        (request(device="bad id!"), "device_id"),
        (request(device=""), "device_id"),
        (request(seconds=10), "window"),
        (request(seconds=31 * 86_400), "window"),
        (request(seconds=-60), "window"),
        (request(priority=7), "priority"),
    ],
)
async def test_bad_requests_are_invalid_arguments_naming_the_field(
    stub: Any, message: Any, field: str
) -> None:
    with pytest.raises(aio.AioRpcError) as failure:
        await stub.StartAnalysis(message)
    assert failure.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert failure.value.details().startswith(f"{field}: ")


async def test_tickets_are_checked(stub: Any) -> None:
    with pytest.raises(aio.AioRpcError) as failure:
        await stub.GetAnalysis(analyzer_pb2.GetAnalysisRequest(ticket="../../etc"))
    assert failure.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(aio.AioRpcError) as failure:
        await stub.GetAnalysis(analyzer_pb2.GetAnalysisRequest(ticket="an_" + "0" * 24))
    assert failure.value.code() == grpc.StatusCode.NOT_FOUND


async def test_analysis_reports_progress_then_a_builtin_result(redis: Redis, stub: Any) -> None:
    readings = await write_history(redis, "press-7")
    ticket = (await stub.StartAnalysis(request(priority=common_pb2.WARNING))).ticket
    updates = await wait_events(redis, 4, "analysis", ticket=ticket)
    assert [(u["status"], u["progress"]) for u in updates] == [
        ("queued", 0.0),
        ("running", 0.1),
        ("running", 0.5),
        ("done", 1.0),
    ]
    done = updates[-1]
    assert done["device_id"] == "press-7" and done["readings"] == readings
    assert done["result"]["source"] == "builtin"
    assert "'temperature' rising" in done["result"]["diagnosis"]
    reply = await stub.GetAnalysis(analyzer_pb2.GetAnalysisRequest(ticket=ticket))
    assert reply.status == analyzer_pb2.Analysis.DONE and reply.progress == 1.0
    assert reply.device_id == "press-7"
    assert reply.result.source == "builtin" and reply.result.urgency == common_pb2.WARNING
    assert reply.result.diagnosis == done["result"]["diagnosis"]


async def test_analysis_without_readings_fails_with_a_reason(redis: Redis, stub: Any) -> None:
    ticket = (await stub.StartAnalysis(request(device="silent-1", seconds=600))).ticket
    updates = await wait_events(redis, 1, "analysis", ticket=ticket, status="failed")
    assert updates[0]["error"] == "no readings from device 'silent-1' in the last 600 s"
    reply = await stub.GetAnalysis(analyzer_pb2.GetAnalysisRequest(ticket=ticket))
    assert reply.status == analyzer_pb2.Analysis.FAILED and "no readings" in reply.error


async def test_model_sees_per_sensor_statistics_not_points(
    redis: Redis, base_env: dict[str, str]
) -> None:
    await write_history(redis, "press-7", minutes=100)
    await redis.hset(keys.DEVICES, "press-7", json.dumps({"labels": {"site": "north"}}))
    async with (
        openai_server() as model,
        running("analyzer", {**base_env, **FAST, **model_env(model)}) as service,
        aio.insecure_channel(f"127.0.0.1:{service.grpc_port}") as channel,
    ):
        stub = analyzer_pb2_grpc.AnalyzerStub(channel)
        ticket = (await stub.StartAnalysis(request(seconds=7200))).ticket
        (done,) = await wait_events(redis, 1, "analysis", ticket=ticket, status="done")
    assert done["result"]["source"] == "model" and done["result"]["cost"] > 0
    (call,) = model.calls
    data = call.data
    assert data["device_id"] == "press-7" and data["device_labels"] == {"site": "north"}
    assert data["window_seconds"] == 7200
    assert set(data["sensors"]) == {"pressure", "temperature"}
    assert data["sensors"]["temperature"]["count"] == 100
    assert len(call.messages[-1]["content"]) < 2000  # statistics, not 200 points


async def test_full_queue_refuses_a_new_analysis(redis: Redis) -> None:
    settings = AnalyzerSettings.from_env({})
    queue = JobQueue(redis, Scripts(redis))
    await queue.configure(1)
    await queue.enqueue("alert:e:3", 3, {"kind": "alert", "episode_id": "e"})
    tickets = Tickets(redis, 60, 1000)
    deep = DeepAnalysis(redis, queue, tickets, None, settings.analysis)  # type: ignore[arg-type]
    with pytest.raises(ResourceExhausted, match="queue is full"):
        await deep.start("press-7", 600, 1)
    assert await redis.keys(keys.ANALYSIS_PREFIX + "*") == []


async def test_dead_lettered_analysis_fails_its_ticket(
    redis: Redis, base_env: dict[str, str]
) -> None:
    ticket = "an_" + "1" * 24
    body = {"kind": "analysis", "ticket": ticket, "device_id": "d1", "window_s": "soon"}
    await JobQueue(redis, Scripts(redis)).enqueue(f"analysis:{ticket}", 2, body)
    async with running("analyzer", {**base_env, **FAST, "VIGIL_QUEUE_MAX_ATTEMPTS": "1"}):
        (failed,) = await wait_events(redis, 1, "analysis", ticket=ticket, status="failed")
    assert failed["error"].startswith("analysis failed: ValueError")
    assert await redis.lrange(keys.QUEUE_DEAD, 0, -1) == [f"analysis:{ticket}"]
