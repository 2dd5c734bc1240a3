"""Deep analysis through the real analyzer's gRPC: a ticket that reaches done, requests
validated before any call, the analyzer's status mapped to an HTTP problem."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import grpc
import pytest
from redis.asyncio import Redis

from services.common.embedded_redis import free_port
from services.notifier.analysis import upstream_error
from tests.notifier.conftest import Notifier, notifier_at
from tests.support.clients import ws_client
from tests.support.history import write_history
from tests.support.services import running


@pytest.fixture
async def with_analyzer(base_env: dict[str, str], redis: Redis) -> AsyncIterator[Notifier]:
    async with running("analyzer", base_env) as analyzer:
        env = {**base_env, "VIGIL_ANALYZER_ADDR": f"127.0.0.1:{analyzer.grpc_port}"}
        async with notifier_at(env) as notifier:
            yield notifier


async def call(notifier: Notifier, token: str, method: str, path: str, **kw: Any) -> Any:
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        aiohttp.ClientSession(notifier.http, headers=headers) as session,
        session.request(method, path, **kw) as response,
    ):
        assert response.content_type == "application/problem+json"
        body = await response.json(content_type=None)
        assert body["status"] == response.status
        return body


async def test_deep_analysis_through_the_api_reaches_done_with_a_result(
    with_analyzer: Notifier, token: str, redis: Redis
) -> None:
    await write_history(redis, "press-1")
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        ws_client(with_analyzer.ws, token, kinds=["analysis"]) as watcher,
        aiohttp.ClientSession(with_analyzer.http, headers=headers) as session,
    ):
        body = {"device_id": "press-1", "window": "1h", "priority": "critical"}
        async with session.post("/api/analysis", json=body) as response:
            assert response.status == 202
            ticket = (await response.json())["ticket"]
        # Progress arrives as events; the API then reports the same final state.
        await watcher.event(timeout_s=30, ticket=ticket, status="done")
        async with session.get(f"/api/analysis/{ticket}") as response:
            assert response.status == 200
            analysis = await response.json()
    assert analysis["ticket"] == ticket
    assert (analysis["status"], analysis["progress"], analysis["error"]) == ("done", 1.0, None)
    assert analysis["result"]["source"] == "builtin"
    assert "temperature" in analysis["result"]["diagnosis"]


async def test_unknown_ticket_is_404(with_analyzer: Notifier, token: str) -> None:
    problem = await call(with_analyzer, token, "GET", "/api/analysis/an_" + "0" * 24)
    assert problem["status"] == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"window": "1h"}, "device_id"),
        ({"device_id": "<script>"}, "device_id"),
        ({"device_id": "press-1", "window": "forever"}, "window"),
        ({"device_id": "press-1", "window": 5}, "window"),
        ({"device_id": "press-1", "window": True}, "window"),
        ({"device_id": "press-1", "priority": "urgent"}, "priority"),
        ({"device_id": "press-1", "priority": ["critical"]}, "priority"),
        (["press-1"], "body"),
    ],
)
async def test_bad_requests_are_400_before_any_call(
    with_analyzer: Notifier, token: str, body: Any, field: str
) -> None:
    problem = await call(with_analyzer, token, "POST", "/api/analysis", json=body)
    assert problem["status"] == 400 and problem["detail"].startswith(f"{field}:")


async def test_bad_ticket_is_400(with_analyzer: Notifier, token: str) -> None:
    problem = await call(with_analyzer, token, "GET", "/api/analysis/" + "t" * 200)
    assert problem["status"] == 400 and problem["detail"].startswith("ticket:")


async def test_unreachable_analyzer_is_503(
    base_env: dict[str, str], token: str, redis: Redis
) -> None:
    env = {**base_env, "VIGIL_ANALYZER_ADDR": f"127.0.0.1:{free_port()}"}
    async with notifier_at(env) as notifier:
        problem = await call(notifier, token, "POST", "/api/analysis", json={"device_id": "p"})
    assert problem["status"] == 503 and problem["detail"] == "the analyzer cannot be reached"


async def test_analyzer_that_never_answers_is_503_after_the_deadline(
    base_env: dict[str, str], token: str, redis: Redis
) -> None:
    """An address that accepts connections and then says nothing (a hung host)."""
    accepted: list[asyncio.StreamWriter] = []

    async def silent(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    env = {**base_env, "VIGIL_ANALYZER_ADDR": f"127.0.0.1:{port}",
           "VIGIL_ANALYZER_TIMEOUT_SECONDS": "0.3"}  # fmt: skip
    try:
        async with notifier_at(env) as notifier:
            problem = await call(notifier, token, "GET", "/api/analysis/t-1")
    finally:
        for writer in accepted:
            writer.close()
        server.close()
        await server.wait_closed()
    assert problem["status"] == 503
    assert problem["detail"] == "the analyzer did not answer in time"


async def test_deep_analysis_has_its_own_smaller_bucket(
    base_env: dict[str, str], token: str, redis: Redis
) -> None:
    env = {
        **base_env,
        "VIGIL_ANALYSIS_BURST": "1",
        "VIGIL_ANALYZER_ADDR": f"127.0.0.1:{free_port()}",
    }
    async with notifier_at(env) as notifier:
        first = await call(notifier, token, "POST", "/api/analysis", json={"device_id": "p"})
        second = await call(notifier, token, "POST", "/api/analysis", json={"device_id": "p"})
        status = await call(notifier, token, "GET", "/api/analysis/t-1")
    assert (first["status"], second["status"], status["status"]) == (503, 429, 503)


@pytest.mark.parametrize(
    ("code", "status"),
    [
        (grpc.StatusCode.INVALID_ARGUMENT, 400),
        (grpc.StatusCode.NOT_FOUND, 404),
        (grpc.StatusCode.FAILED_PRECONDITION, 409),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, 429),
        (grpc.StatusCode.UNIMPLEMENTED, 501),
        (grpc.StatusCode.UNAVAILABLE, 503),
        (grpc.StatusCode.DEADLINE_EXCEEDED, 503),
        (grpc.StatusCode.INTERNAL, 502),
        (grpc.StatusCode.PERMISSION_DENIED, 502),
    ],
)
def test_every_analyzer_status_has_an_http_problem(code: grpc.StatusCode, status: int) -> None:
    error = upstream_error(code, "device_id: unknown device", retry_after=2.0)
    assert error.http_status == status
    if status == 502:
        assert "unknown device" not in error.message  # internal details stay inside
    if status == 429:
        assert getattr(error, "retry_after", None) == 2.0
