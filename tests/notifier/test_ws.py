"""The /ws endpoint and gRPC Subscribe on a real notifier with a real Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import grpc
import pytest
from grpc import aio
from redis.asyncio import Redis
from vigil.v1 import notifier_pb2, notifier_pb2_grpc

from services.common.auth import dashboard_token
from services.common.events import publish
from tests.support.clients import ws_client
from tests.support.services import running


@pytest.fixture
async def notifier(base_env: dict[str, str], redis: Redis) -> AsyncIterator[dict[str, Any]]:
    async with running("notifier", base_env) as service:
        port = service.app.http_port  # type: ignore[attr-defined]
        yield {
            "ws": f"ws://127.0.0.1:{port}/ws",
            "http": f"http://127.0.0.1:{port}",
            "grpc": f"127.0.0.1:{service.grpc_port}",
        }


@pytest.fixture
def token(dashboard_secret: str) -> str:
    return dashboard_token(dashboard_secret, "tests")


def alert(device: str, severity: str = "warning", n: int = 0) -> dict[str, Any]:
    return {"kind": "alert", "device_id": device, "severity": severity, "n": n}


async def raw_first_frame(url: str, frame: Any, **headers: str) -> tuple[Any, int | None]:
    async with aiohttp.ClientSession() as session, session.ws_connect(url, headers=headers) as ws:
        if isinstance(frame, bytes):
            await ws.send_bytes(frame)
        else:
            await ws.send_str(frame)
        reply = await ws.receive(timeout=10)
        closing = await ws.receive(timeout=10)
        return (
            reply.json() if reply.type == aiohttp.WSMsgType.TEXT else reply,
            ws.close_code or closing.data,
        )


async def test_live_event_reaches_subscriber(
    notifier: dict[str, Any], token: str, redis: Redis
) -> None:
    async with ws_client(notifier["ws"], token) as client:
        entry_id = await publish(redis, alert("dev-1"))
        got_id, event = await client.event()
    assert got_id == entry_id and event == alert("dev-1")


async def test_resume_replays_exactly_what_was_missed(
    notifier: dict[str, Any], token: str, redis: Redis
) -> None:
    ids = [await publish(redis, alert("dev-1", n=i)) for i in range(5)]
    async with ws_client(notifier["ws"], token, last_id=ids[1]) as client:
        replayed = [await client.event() for _ in range(3)]
        live_id = await publish(redis, alert("dev-1", n=5))
        live = await client.event()
    assert [i for i, _ in replayed] == ids[2:]
    assert [e["n"] for _, e in replayed] == [2, 3, 4]
    assert live == (live_id, alert("dev-1", n=5))


async def test_filters_by_device_and_minimum_severity(
    notifier: dict[str, Any], token: str, redis: Redis
) -> None:
    async with ws_client(notifier["ws"], token, devices=["a"], min_severity="critical") as client:
        await publish(redis, alert("b", "critical"))
        await publish(redis, alert("a", "warning"))
        wanted = await publish(redis, alert("a", "critical"))
        got_id, _ = await client.event()
    assert got_id == wanted


async def test_too_old_last_id_gets_reset(
    notifier: dict[str, Any], token: str, redis: Redis
) -> None:
    first = await publish(redis, alert("dev-1", n=0))
    await publish(redis, alert("dev-1", n=1))
    await redis.xdel("vigil:events", first)
    async with ws_client(notifier["ws"], token, last_id="1-0") as client:
        frame = await client.frame()
    assert frame["type"] == "reset" and frame["alerts"] == []


@pytest.mark.parametrize(
    ("frame", "code", "error"),
    [
        ('{"type": "subscribe", "token": "x.0.y"}', 4401, "unauthenticated"),
        ("not json", 4400, "invalid_argument"),
        ('{"type": "subscribe", "token": "t", "last_id": "yesterday"}', 4400, "invalid_argument"),
        ('{"type": "hello"}', 4400, "invalid_argument"),
        (b"\x00\x01", 4400, "invalid_argument"),
    ],
    ids=["bad-token", "malformed", "bad-last-id", "wrong-type", "binary"],
)
async def test_bad_first_frame_gets_error_then_close(
    notifier: dict[str, Any], frame: Any, code: int, error: str
) -> None:
    reply, close_code = await raw_first_frame(notifier["ws"], frame)
    assert reply["type"] == "error" and reply["code"] == error
    assert close_code == code


async def test_foreign_origin_is_refused(notifier: dict[str, Any]) -> None:
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as failure:
            await session.ws_connect(notifier["ws"], headers={"Origin": "https://evil.example"})
    assert failure.value.status == 403


async def test_malformed_frame_after_subscribe_is_answered_not_fatal(
    notifier: dict[str, Any], token: str, redis: Redis
) -> None:
    async with ws_client(notifier["ws"], token) as client:
        await client.ws.send_str("{oops")
        assert (await client.frame())["type"] == "error"
        await client.send({"type": "ping"})
        assert await client.frame() == {"type": "pong"}
        entry_id = await publish(redis, alert("dev-1"))
        assert (await client.event())[0] == entry_id


async def test_grpc_subscribe_requires_token_and_resumes(
    notifier: dict[str, Any], token: str, redis: Redis
) -> None:
    async with aio.insecure_channel(notifier["grpc"]) as channel:
        stub = notifier_pb2_grpc.NotifierStub(channel)
        denied = stub.Subscribe(notifier_pb2.SubscribeRequest())
        with pytest.raises(aio.AioRpcError) as failure:
            await denied.read()
        assert failure.value.code() == grpc.StatusCode.UNAUTHENTICATED

        first = await publish(redis, alert("dev-1", n=0))
        second = await publish(redis, alert("dev-1", "critical", n=1))
        call = stub.Subscribe(
            notifier_pb2.SubscribeRequest(last_id=first),
            metadata=(("authorization", f"Bearer {token}"),),
        )
        event = await call.read()
        call.cancel()
    assert (event.id, event.kind, event.device_id, event.severity) == (second, "alert", "dev-1", 3)


async def test_health_endpoints(notifier: dict[str, Any]) -> None:
    async with aiohttp.ClientSession() as session:
        for path in ("/healthz", "/readyz"):
            async with session.get(notifier["http"] + path) as response:
                assert response.status == 200
        async with session.get(notifier["http"] + "/nope") as response:
            assert response.status == 404
            assert response.content_type == "application/problem+json"
