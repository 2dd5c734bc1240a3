"""No door opens without the right key: device tokens on ingest, dashboard tokens on
the notifier's gRPC, WebSocket and HTTP doors, and Origins on the WebSocket.

What tests beside the services already pin is not repeated here: a missing, malformed
or other device's token on ingest (tests/ingest/test_stream.py), a missing token on
Subscribe (tests/notifier/test_grpc.py), an expired token and foreign/listed/same
Origins on /ws (tests/notifier/test_ws.py), a missing or tampered token on the HTTP
API (tests/notifier/test_api.py), token minting and expiry (tests/common/test_auth.py).
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import AsyncIterator

import aiohttp
import grpc
import pytest
from grpc import aio
from redis.asyncio import Redis
from vigil.v1 import ingest_pb2, notifier_pb2, notifier_pb2_grpc

from services.common import keys
from services.common.auth import dashboard_token, device_token
from services.common.events import publish
from tests.notifier.conftest import Notifier, alert, notifier_at
from tests.support.clients import batch as device_batch
from tests.support.clients import hello, reading, stream_status, token_for


@pytest.fixture
async def notifier(base_env: dict[str, str], redis: Redis) -> AsyncIterator[Notifier]:
    async with notifier_at(base_env) as started:
        yield started


def expired(secret: str) -> str:
    """A token that was valid until a second into 1970."""
    token = dashboard_token(secret, "viewer", ttl_s=1)
    name, _, _ = token.split(".")
    from services.common.auth import _sign  # the signature of another expiry

    return f"{name}.1.{_sign(secret, f'dashboard|{name}|1')}"


def wrong_dashboard_tokens(dashboard_secret: str, device_secret: str) -> dict[str, str]:
    """Every way a dashboard credential can be wrong, by name."""
    valid = dashboard_token(dashboard_secret, "viewer")
    name, expiry, signature = valid.split(".")
    return {
        "expired": expired(dashboard_secret),
        "other secret": dashboard_token(secrets.token_hex(32), "viewer"),
        "name swapped": f"admin.{expiry}.{signature}",
        "expiry extended": f"{name}.{int(time.time()) + 10**6}.{signature}",
        "device token": device_token(device_secret, "viewer"),
        "non-ascii": f"{name}.{expiry}.{'é' * 64}",
    }


# ---- ingest ------------------------------------------------------------------------


async def ingest_status(target: str, token: str, messages: list[ingest_pb2.DeviceMessage]) -> (
    tuple[grpc.StatusCode, str]
):  # fmt: skip
    """Send `messages` with `token`; the stream's status and its details."""
    code, details, _ = await stream_status(target, token, messages)
    return code, details


def batch(seq: int) -> ingest_pb2.DeviceMessage:
    return device_batch(seq, [reading("temperature", 99.0)])


async def traces_of(redis: Redis, device_id: str) -> list[str]:
    """Everything in Redis that says `device_id` connected or sent something."""
    found = []
    if await redis.hexists(keys.DEVICES, device_id):
        found.append("device record")
    if await redis.exists(keys.seen(device_id), keys.history(device_id)):
        found.append("batches")
    for _, fields in await redis.xrange(keys.EVENTS):
        if fields.get("device") == device_id:
            found.append(f"{fields['kind']} event")
    return found


async def test_device_a_can_never_send_as_device_b(
    ingest: str, device_secret: str, redis: Redis
) -> None:
    token_a = token_for(device_secret, "dev-a")
    # A's token with B's Hello.
    assert await ingest_status(ingest, token_a, [hello("dev-b"), batch(1)]) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "token does not authorise device 'dev-b'",
    )
    # A's own Hello, then a second Hello claiming to be B in the middle of the stream.
    code, details = await ingest_status(ingest, token_a, [hello("dev-a"), batch(1), hello("dev-b"),
                                                          batch(2)])  # fmt: skip
    assert (code, details) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "hello: Hello may only be the first message",
    )
    assert await traces_of(redis, "dev-b") == []
    assert "device record" in await traces_of(redis, "dev-a")  # A itself was served


async def test_a_token_under_another_secret_or_of_another_kind_opens_nothing(
    ingest: str, dashboard_secret: str, redis: Redis
) -> None:
    cases = {
        "other secret": (device_token(secrets.token_hex(32), "dev-1"), "PERMISSION_DENIED"),
        "dashboard token": (dashboard_token(dashboard_secret, "dev-1"), "UNAUTHENTICATED"),
        "uppercase hex": (device_token(secrets.token_hex(32), "dev-1").upper(), "UNAUTHENTICATED"),
    }
    for what, (token, status) in cases.items():
        code, details = await ingest_status(ingest, token, [hello("dev-1"), batch(1)])
        assert (what, code.name) == (what, status), details
        assert details
    assert await traces_of(redis, "dev-1") == []


# ---- notifier: gRPC Subscribe --------------------------------------------------------


async def test_subscribe_refuses_every_wrong_dashboard_token(
    notifier: Notifier, dashboard_secret: str, device_secret: str, redis: Redis
) -> None:
    wrong = wrong_dashboard_tokens(dashboard_secret, device_secret)
    del wrong["non-ascii"]  # gRPC clients refuse to send non-ASCII metadata at all
    headers = {f"Bearer {token}": what for what, token in wrong.items()}
    headers[f"Basic {dashboard_token(dashboard_secret, 'viewer')}"] = "wrong scheme"
    async with aio.insecure_channel(notifier.grpc) as channel:
        stub = notifier_pb2_grpc.NotifierStub(channel)
        for header, what in headers.items():
            metadata = (("authorization", header),)
            call = stub.Subscribe(notifier_pb2.SubscribeRequest(), metadata=metadata, timeout=10)
            with pytest.raises(aio.AioRpcError) as failure:
                await call.read()
            assert (what, failure.value.code()) == (what, grpc.StatusCode.UNAUTHENTICATED)
            assert failure.value.details(), what
        # The right token is served: it gets the alert published before (replayed from
        # the start of the stream, or inside a reset when that start was trimmed).
        await publish(redis, alert("dev-1"))
        good = (("authorization", f"Bearer {dashboard_token(dashboard_secret, 'viewer')}"),)
        call = stub.Subscribe(
            notifier_pb2.SubscribeRequest(last_id="0-0"), metadata=good, timeout=10
        )
        event = await call.read()
        seen = event.json if event.kind == "reset" else json.dumps([json.loads(event.json)])
        assert '"device_id":"dev-1"' in seen.replace(" ", "")
        call.cancel()


# ---- notifier: WebSocket -------------------------------------------------------------


async def ws_refusal(url: str, first: dict[str, object], origin: str | None = None) -> (
    tuple[dict[str, object], int | None]
):  # fmt: skip
    headers = {"Origin": origin} if origin else {}
    async with aiohttp.ClientSession() as session, session.ws_connect(url, headers=headers) as ws:
        await ws.send_str(json.dumps(first))
        error = json.loads((await ws.receive(timeout=10)).data)
        closing = await ws.receive(timeout=10)
        assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        return error, ws.close_code


async def test_websocket_refuses_every_wrong_dashboard_token(
    notifier: Notifier, dashboard_secret: str, device_secret: str
) -> None:
    for what, token in wrong_dashboard_tokens(dashboard_secret, device_secret).items():
        error, code = await ws_refusal(notifier.ws, {"type": "subscribe", "token": token})
        assert (what, code, error["type"], error["code"]) == (
            what, 4401, "error", "unauthenticated",
        )  # fmt: skip
    error, code = await ws_refusal(notifier.ws, {"type": "subscribe"})
    assert (code, error["message"]) == (4400, "token: must be a non-empty string")


@pytest.mark.parametrize(
    "origin",
    ["null", "http://127.0.0.1.evil.example", "http://evil.example", "file://"],
)
async def test_websocket_refuses_lookalike_origins_before_the_upgrade(
    notifier: Notifier, origin: str
) -> None:
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as failure:
            await session.ws_connect(notifier.ws, headers={"Origin": origin})
    assert failure.value.status == 403


async def test_websocket_origin_on_another_port_of_the_same_host_is_refused(
    notifier: Notifier,
) -> None:
    port = int(notifier.http.rsplit(":", 1)[1])
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as failure:
            await session.ws_connect(
                notifier.ws, headers={"Origin": f"http://127.0.0.1:{port + 1}"}
            )
    assert failure.value.status == 403


# ---- notifier: HTTP API (and through it the analyzer) --------------------------------


async def test_http_api_refuses_every_wrong_token_and_reaches_no_analyzer(
    base_env: dict[str, str], dashboard_secret: str, device_secret: str, redis: Redis
) -> None:
    from tests.support.services import running

    async with running("analyzer", base_env) as analyzer:
        env = {**base_env, "VIGIL_ANALYZER_ADDR": f"127.0.0.1:{analyzer.grpc_port}"}
        async with notifier_at(env) as notifier, aiohttp.ClientSession() as session:
            valid = dashboard_token(dashboard_secret, "viewer")
            attempts = {
                f"Bearer {token}": what
                for what, token in wrong_dashboard_tokens(dashboard_secret, device_secret).items()
            }
            attempts[f"Basic {valid}"] = "wrong scheme"
            attempts[""] = "no header"
            body = {"device_id": "dev-1", "window": "1h"}
            for header, what in attempts.items():
                headers = {"Authorization": header} if header else {}
                for method, path in (("POST", "/api/analysis"), ("GET", "/api/alerts")):
                    async with session.request(
                        method, f"{notifier.http}{path}", json=body, headers=headers
                    ) as response:
                        problem = await response.json(content_type=None)
                        assert (what, response.status) == (what, 401)
                        assert response.content_type == "application/problem+json"
                        assert problem["detail"], what
            # A token in the query string is not a credential either.
            async with session.get(f"{notifier.http}/api/alerts?token={valid}") as response:
                assert response.status == 401
            assert [k async for k in redis.scan_iter(match="vigil:analysis:*")] == []
            assert await redis.zcard(keys.QUEUE) == 0
            # The right token does reach the analyzer.
            async with session.post(
                f"{notifier.http}/api/analysis",
                json=body,
                headers={"Authorization": f"Bearer {valid}"},
            ) as response:
                assert response.status == 202, await response.text()
            assert len([k async for k in redis.scan_iter(match="vigil:analysis:*")]) == 1
