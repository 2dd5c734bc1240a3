"""A Redis that is away is a reason to retry, never an internal error: the gRPC boundary
answers UNAVAILABLE and the HTTP boundary 503, each with a message that names no
address, once the client's own retries (about five seconds) are spent."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import grpc
import pytest
from grpc import aio
from vigil.v1 import ingest_pb2_grpc

from services.common.auth import dashboard_token
from services.common.embedded_redis import EmbeddedRedis, free_port
from tests.support.clients import hello, token_for
from tests.support.services import running


@pytest.fixture
def lone_redis(tmp_path: Path) -> EmbeddedRedis:
    """A Redis of the test's own, to kill."""
    server = EmbeddedRedis(tmp_path / "redis", appendonly=False)
    server.start()
    return server


@pytest.mark.timeout(60)
async def test_device_stream_ends_unavailable_when_redis_is_gone(
    lone_redis: EmbeddedRedis, device_secret: str
) -> None:
    env = {
        "REDIS_URL": lone_redis.url,
        "VIGIL_DEVICE_SECRET": device_secret,
        "VIGIL_DASHBOARD_SECRET": "x" * 64,
        "VIGIL_DETECTOR_ADDRS": f"127.0.0.1:{free_port()}",
    }
    try:
        async with (
            running("ingest", env) as service,
            aio.insecure_channel(f"127.0.0.1:{service.grpc_port}") as channel,
        ):
            lone_redis.kill()
            call = ingest_pb2_grpc.IngestStub(channel).Stream(
                metadata=(("authorization", f"Bearer {token_for(device_secret, 'd-1')}"),)
            )
            await call.write(hello("d-1"))
            with pytest.raises(aio.AioRpcError) as ended:
                await call.read()
    finally:
        lone_redis.stop()
    assert ended.value.code() == grpc.StatusCode.UNAVAILABLE, ended.value
    details = ended.value.details() or ""
    assert "retry" in details and "127.0.0.1" not in details and "Error" not in details


@pytest.mark.timeout(60)
async def test_api_answers_503_when_redis_is_gone(
    lone_redis: EmbeddedRedis, dashboard_secret: str
) -> None:
    env = {
        "REDIS_URL": lone_redis.url,
        "VIGIL_DEVICE_SECRET": "y" * 64,
        "VIGIL_DASHBOARD_SECRET": dashboard_secret,
    }
    headers = {"Authorization": f"Bearer {dashboard_token(dashboard_secret, 'tests')}"}
    try:
        async with running("notifier", env) as service, aiohttp.ClientSession() as http:
            base = f"http://127.0.0.1:{service.app.http_port}"  # type: ignore[attr-defined]
            async with http.get(f"{base}/api/devices", headers=headers) as response:
                assert response.status == 200  # Redis is there: the page works
            lone_redis.kill()
            async with http.get(f"{base}/api/devices", headers=headers) as response:
                status = response.status
                kind = response.content_type
                body = await response.json(content_type=None)
    finally:
        lone_redis.stop()
    assert status == 503, body
    assert kind == "application/problem+json"
    assert body["status"] == 503 and "retry" in body["detail"]
    assert "127.0.0.1" not in body["detail"]
