"""`Notifier.Subscribe` on a real notifier through the generated stubs."""

from __future__ import annotations

import json

import grpc
import pytest
from grpc import aio
from redis.asyncio import Redis
from vigil.v1 import common_pb2, notifier_pb2, notifier_pb2_grpc

from services.common.events import publish, stream_fields
from tests.notifier.conftest import Notifier, alert, insight, notifier_at
from tests.support.clients import ws_client


def subscribe(
    channel: aio.Channel, token: str, **request: object
) -> aio.UnaryStreamCall[notifier_pb2.SubscribeRequest, notifier_pb2.Event]:
    stub = notifier_pb2_grpc.NotifierStub(channel)
    return stub.Subscribe(
        notifier_pb2.SubscribeRequest(**request),  # type: ignore[arg-type]
        metadata=(("authorization", f"Bearer {token}"),),
    )


async def test_subscribe_requires_a_token(notifier: Notifier) -> None:
    async with aio.insecure_channel(notifier.grpc) as channel:
        call = notifier_pb2_grpc.NotifierStub(channel).Subscribe(notifier_pb2.SubscribeRequest())
        with pytest.raises(aio.AioRpcError) as failure:
            await call.read()
    assert failure.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_subscribe_resumes_after_last_id(
    notifier: Notifier, token: str, redis: Redis
) -> None:
    first = await publish(redis, alert("dev-1", n=0))
    second = await publish(redis, alert("dev-1", "critical", n=1))
    async with aio.insecure_channel(notifier.grpc) as channel:
        call = subscribe(channel, token, last_id=first)
        event = await call.read()
        call.cancel()
    assert (event.id, event.kind, event.device_id) == (second, "alert", "dev-1")
    assert event.severity == common_pb2.CRITICAL
    assert json.loads(event.json) == alert("dev-1", "critical", n=1)


async def test_subscribe_filters_by_labels_and_kinds(
    notifier: Notifier, token: str, redis: Redis
) -> None:
    start = await publish(redis, alert("before"))  # resuming from it: no registration race
    async with aio.insecure_channel(notifier.grpc) as channel:
        call = subscribe(channel, token, labels={"site": "north"}, kinds=["insight"], last_id=start)
        await publish(redis, alert("a", labels={"site": "north"}, alert_id="ep-a"))
        await publish(redis, alert("b", labels={"site": "south"}, alert_id="ep-b"))
        await publish(redis, insight("b", "ep-b"))
        wanted = await publish(redis, insight("a", "ep-a"))
        event = await call.read()
        call.cancel()
    assert (event.id, event.kind, event.device_id) == (wanted, "insight", "a")


async def test_subscribe_too_old_gets_a_reset_with_current_alerts(
    notifier: Notifier, token: str, redis: Redis
) -> None:
    async with ws_client(notifier.ws, token) as watcher:
        await publish(redis, alert("dev-1", alert_id="ep-1"))
        position = await publish(redis, alert("dev-1", alert_id="ep-2", sensor="power"))
        await watcher.event(sensor="power")
    await redis.xtrim("vigil:events", maxlen=1)
    async with aio.insecure_channel(notifier.grpc) as channel:
        call = subscribe(channel, token, last_id="1-0")
        reset = await call.read()
        live = await publish(redis, alert("dev-2"))
        after = await call.read()
        call.cancel()
    assert (reset.kind, reset.id) == ("reset", position)
    assert {a["alert_id"] for a in json.loads(reset.json)["alerts"]} == {"ep-1", "ep-2"}
    assert after.id == live


async def test_subscribe_rejects_bad_filters(notifier: Notifier, token: str) -> None:
    async with aio.insecure_channel(notifier.grpc) as channel:
        for request in ({"device_ids": ["<x>"]}, {"last_id": "yesterday"},
                        {"labels": {"bad key!": "x"}}):  # fmt: skip
            with pytest.raises(aio.AioRpcError) as failure:
                await subscribe(channel, token, **request).read()
            assert failure.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_subscriber_that_falls_behind_ends_with_resource_exhausted(
    base_env: dict[str, str], token: str, redis: Redis
) -> None:
    async with (
        notifier_at({**base_env, "VIGIL_WS_QUEUE": "5"}) as notifier,
        aio.insecure_channel(notifier.grpc) as channel,
    ):
        before = await publish(redis, alert("marker", n=0))
        marker = await publish(redis, alert("marker", n=1))
        call = subscribe(channel, token, last_id=before)
        assert (await call.read()).id == marker  # so it is subscribed by now
        async with redis.pipeline(transaction=True) as pipe:
            for n in range(50):
                pipe.xadd("vigil:events", stream_fields(alert("a", n=n)))  # type: ignore[arg-type]
            await pipe.execute()
        with pytest.raises(aio.AioRpcError) as failure:
            while True:
                await call.read()
    assert failure.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "last_id" in (failure.value.details() or "")
