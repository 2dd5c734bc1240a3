"""Limits on the notifier's and the analyzer's doors, each refused with a clear status.

Ingest's limits (streams per replica, message size, idle streams, window and rate,
keepalive abuse) are pinned in tests/ingest/test_limits.py, the WebSocket frame size in
tests/notifier/test_ws.py, the HTTP API's per-token rates in tests/notifier/test_api.py
and test_analysis.py: not repeated here.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import grpc
import pytest
from grpc import aio
from redis.asyncio import Redis
from vigil.v1 import analyzer_pb2, analyzer_pb2_grpc, notifier_pb2, notifier_pb2_grpc

from services.common.auth import dashboard_token
from tests.notifier.conftest import Notifier, notifier_at
from tests.support.services import running

PINGER = [
    ("grpc.keepalive_time_ms", 100),
    ("grpc.keepalive_timeout_ms", 1000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.http2.min_time_between_pings_ms", 100),
    ("grpc.http2.min_ping_interval_without_data_ms", 100),
]
TOO_BIG = 5 * 1024 * 1024  # gRPC's default receive limit is 4 MiB


@pytest.fixture
async def notifier(base_env: dict[str, str], redis: Redis) -> AsyncIterator[Notifier]:
    async with notifier_at(base_env) as started:
        yield started


@pytest.mark.timeout(60)
async def test_subscriber_pinging_too_often_is_sent_away(
    notifier: Notifier, dashboard_secret: str
) -> None:
    metadata = (("authorization", f"Bearer {dashboard_token(dashboard_secret, 'viewer')}"),)
    async with aio.insecure_channel(notifier.grpc, options=PINGER) as channel:
        call = notifier_pb2_grpc.NotifierStub(channel).Subscribe(
            notifier_pb2.SubscribeRequest(), metadata=metadata
        )
        with pytest.raises(aio.AioRpcError) as failure:
            await asyncio.wait_for(call.read(), 30)
    assert failure.value.code() == grpc.StatusCode.UNAVAILABLE
    assert failure.value.details() == "Too many pings"


async def test_oversized_requests_are_refused_by_the_notifier_and_the_analyzer(
    notifier: Notifier, base_env: dict[str, str], dashboard_secret: str
) -> None:
    metadata = (("authorization", f"Bearer {dashboard_token(dashboard_secret, 'viewer')}"),)
    huge = "x" * TOO_BIG
    async with aio.insecure_channel(notifier.grpc) as channel:
        call = notifier_pb2_grpc.NotifierStub(channel).Subscribe(
            notifier_pb2.SubscribeRequest(last_id=huge), metadata=metadata, timeout=10
        )
        with pytest.raises(aio.AioRpcError) as failure:
            await call.read()
    assert failure.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "larger than max" in (failure.value.details() or "")
    async with (
        running("analyzer", base_env) as analyzer,
        aio.insecure_channel(f"127.0.0.1:{analyzer.grpc_port}") as channel,
    ):
        stub = analyzer_pb2_grpc.AnalyzerStub(channel)
        with pytest.raises(aio.AioRpcError) as failure:
            await stub.GetAnalysis(analyzer_pb2.GetAnalysisRequest(ticket=huge), timeout=10)
        assert failure.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        with pytest.raises(aio.AioRpcError) as failure:  # still serving, and checking
            await stub.GetAnalysis(analyzer_pb2.GetAnalysisRequest(ticket="x"), timeout=10)
        assert failure.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_http_body_over_64_kib_is_413_and_the_server_carries_on(
    notifier: Notifier, dashboard_secret: str
) -> None:
    headers = {"Authorization": f"Bearer {dashboard_token(dashboard_secret, 'viewer')}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        async with session.post(
            f"{notifier.http}/api/analysis", data=b"{" + b" " * (64 * 1024 + 1) + b"}",
            headers={"Content-Type": "application/json"},
        ) as response:  # fmt: skip
            problem = await response.json(content_type=None)
            assert response.status == 413
            assert response.content_type == "application/problem+json"
            assert problem["detail"]
        async with session.get(f"{notifier.http}/api/stats") as response:
            assert response.status == 200
