"""The model down, rate-limiting or hanging: alerts keep getting insights (from the
built-in analyzer, saying why), and the breaker's metrics move."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from prometheus_client import REGISTRY
from redis.asyncio import Redis

from services.analyzer.breaker import OPEN
from tests.analyzer.alerts import raise_alert, wait_events
from tests.support import openai_server as srv
from tests.support.openai_server import OpenAIServer, model_env
from tests.support.services import running

ALERTS = 12


@pytest.fixture
async def server() -> AsyncIterator[OpenAIServer]:
    async with srv.openai_server() as running_server:
        yield running_server


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels or None) or 0.0


async def storm(redis: Redis) -> list[str]:
    """Alerts with distinct patterns (no cache can help); returns their ids."""
    ids = []
    for i in range(ALERTS):
        episode, _ = await raise_alert(redis, f"dev-{i}", labels={"line": str(i)})
        ids.append(episode)
    return ids


@pytest.mark.parametrize(
    ("reply", "first_note"),
    [
        (srv.SERVER_ERROR, "model error 500"),
        (srv.rate_limited("0.01"), "rate limited by the model provider"),
    ],
)
async def test_outage_gives_builtin_insights_with_a_reason_and_opens_the_breaker(
    redis: Redis, base_env: dict[str, str], server: OpenAIServer, reply: srv.Reply, first_note: str
) -> None:
    server.default = reply
    opened = sample("vigil_analyzer_breaker_transitions_total", to="open")
    env = model_env(
        server,
        VIGIL_LLM_RETRIES="1",
        VIGIL_LLM_BACKOFF_SECONDS="0.01",
        VIGIL_LLM_BREAKER_FAILURES="4",
        VIGIL_LLM_BREAKER_COOLDOWN_SECONDS="600",
        VIGIL_LLM_REQUESTS_PER_MINUTE="60000",
    )
    async with running("analyzer", {**base_env, **env}):
        ids = await storm(redis)
        insights = await wait_events(redis, 2 * ALERTS, "insight")
        assert sample("vigil_analyzer_breaker_state") == OPEN
    assert {i["alert_id"] for i in insights} == set(ids)
    assert {i["source"] for i in insights} == {"builtin"}
    notes = [i.get("note") for i in insights if i.get("note")]
    assert len(notes) == ALERTS  # every job's insight says why the model did not answer
    # Workers fail side by side, so a fast "circuit open" insight may be written before
    # the slower write of an earlier failure's: order says nothing, presence does.
    assert any(first_note in note for note in notes)
    assert any("circuit open" in note for note in notes)
    # The fourth failure opens the circuit; before it, at most three failures were in and
    # four calls (one per worker) in flight: 4..7 calls, not the 24 tries of 12 jobs.
    assert 4 <= len(server.calls) <= 7
    assert sample("vigil_analyzer_breaker_transitions_total", to="open") == opened + 1


async def test_quick_insights_do_not_wait_for_a_hanging_model(
    redis: Redis, base_env: dict[str, str], server: OpenAIServer
) -> None:
    server.default = srv.slow(60)  # every call hangs until the server stops
    env = model_env(server, VIGIL_LLM_TIMEOUT_SECONDS="60", VIGIL_ANALYZER_CONCURRENCY="2")
    async with running("analyzer", {**base_env, **env}):
        ids = await storm(redis)
        quick = await wait_events(redis, ALERTS, "insight", timeout_s=5)
        await server.wait_calls(2)
        assert {i["alert_id"] for i in quick} == set(ids)
        assert {i["source"] for i in quick} == {"builtin"}
        assert len(server.calls) == 2  # both workers are stuck on the model meanwhile
