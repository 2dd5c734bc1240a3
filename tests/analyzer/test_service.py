"""The analyzer service in process (real bootstrap, real Redis, real gRPC) with and
without a model behind it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from tests.analyzer.alerts import events, job_done, raise_alert, wait_events
from tests.support.openai_server import OpenAIServer, model_env, openai_server
from tests.support.services import running

FAST = {"VIGIL_QUEUE_REAP_SECONDS": "0.1"}


@pytest.fixture
async def model() -> AsyncIterator[OpenAIServer]:
    async with openai_server() as server:
        yield server


async def test_without_a_model_each_alert_gets_one_builtin_insight_right_after_it(
    redis: Redis, base_env: dict[str, str]
) -> None:
    async with running("analyzer", {**base_env, **FAST}):
        episode, job_id = await raise_alert(redis)
        insight = (await wait_events(redis, 1, "insight"))[0]
        assert insight["alert_id"] == episode and insight["source"] == "builtin"
        assert insight["job_id"] == job_id and insight["cost"] == 0
        await job_done(redis, job_id)  # the job completes...
        kinds = [e["kind"] for _, e in await events(redis)]
        assert kinds == ["alert", "insight"]  # ... without a second identical insight


async def test_model_diagnosis_follows_and_supersedes_the_quick_insight(
    redis: Redis, base_env: dict[str, str], model: OpenAIServer
) -> None:
    async with running("analyzer", {**base_env, **FAST, **model_env(model)}):
        episode, job_id = await raise_alert(redis, labels={"site": "north"})
        quick, deep = await wait_events(redis, 2, "insight", alert_id=episode)
        assert (quick["source"], deep["source"]) == ("builtin", "model")
        assert deep["job_id"] == job_id and deep["cost"] > 0
        assert deep["diagnosis"].startswith("Model diagnosis for temperature")
        kinds = [e["kind"] for _, e in await events(redis)]
        assert kinds == ["alert", "insight", "insight"]
        (call,) = model.calls
        assert call.data["device_labels"] == {"site": "north"}
        assert "press-7" not in call.messages[-1]["content"]  # the answer is shared
        # A similar incident on another device: answered from the cache at once.
        other, other_job = await raise_alert(redis, "press-9", value=97.5, labels={"site": "north"})
        (hit,) = await wait_events(redis, 1, "insight", alert_id=other)
        assert hit["source"] == "cache" and hit["diagnosis"] == deep["diagnosis"]
        assert hit["cost"] == 0 and hit["device_id"] == "press-9"
        await job_done(redis, other_job)
        assert [e["source"] for _, e in await events(redis, "insight")] == [
            "builtin",
            "model",
            "cache",  # the job found the same cached answer: not published twice
        ]
        assert len(model.calls) == 1
