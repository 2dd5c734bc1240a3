"""The analyzer's /metrics: the names other parts rely on, queue depth by level, and
shared events (shed jobs) counted exactly once across replicas."""

from __future__ import annotations

import aiohttp
from prometheus_client import REGISTRY
from redis.asyncio import Redis

from services.common.queue import JobQueue
from services.common.scripts import Scripts
from tests.analyzer.alerts import raise_alert, until, wait_events
from tests.support import openai_server as srv
from tests.support.openai_server import model_env
from tests.support.services import running

CONTRACT = [
    'vigil_analyzer_queue_depth{priority="critical"}',
    'vigil_analyzer_queue_depth{priority="warning"}',
    'vigil_analyzer_queue_depth{priority="info"}',
    "vigil_analyzer_queue_wait_seconds_bucket",
    "vigil_analyzer_job_attempts_bucket",
    "vigil_analyzer_dead_letters_total",
    "vigil_analyzer_shed_jobs_total",
    "vigil_analyzer_breaker_state",
    "vigil_analyzer_llm_cost_total",
    'vigil_analyzer_llm_tokens_total{kind="prompt"}',
    'vigil_analyzer_cache_requests_total{level="l1",result="miss"}',
    'vigil_analyzer_cache_requests_total{level="l2",result="miss"}',
    "vigil_analyzer_rate_limit_wait_seconds_bucket",
    'vigil_analyzer_llm_request_seconds_bucket{le="0.005",outcome="ok"}',
    'vigil_analyzer_quick_insights_total{source="builtin"}',
]


def value(text: str, sample: str) -> float:
    lines = [line for line in text.splitlines() if line.startswith(sample + " ")]
    assert lines, f"/metrics lacks {sample}"
    return float(lines[0].rsplit(" ", 1)[1])


async def test_metrics_show_depth_by_level_and_the_contract_names(
    redis: Redis, base_env: dict[str, str]
) -> None:
    async with srv.openai_server() as server:
        server.then(srv.OK)
        server.default = srv.slow(60)  # after the first call, the one worker is stuck
        env = {**base_env, **model_env(server), "VIGIL_ANALYZER_CONCURRENCY": "1"}
        async with running("analyzer", {**env, "VIGIL_QUEUE_REAP_SECONDS": "0.05"}) as service:
            await raise_alert(redis, "d0", severity=3)
            await wait_events(redis, 2, "insight")  # quick + model
            await raise_alert(redis, "d1", value=130.0, severity=3)  # another pattern
            await server.wait_calls(2)  # the worker hangs on this one
            await raise_alert(redis, "d2", severity=2)
            await raise_alert(redis, "d3", severity=1)
            await raise_alert(redis, "d4", severity=1)
            url = f"http://127.0.0.1:{service.metrics_port}/metrics"
            async with aiohttp.ClientSession() as http:

                async def depth_shown() -> bool:
                    async with http.get(url) as response:
                        text = await response.text()
                    return value(text, 'vigil_analyzer_queue_depth{priority="info"}') == 2

                await until(depth_shown, what="queue depth gauge")
                async with http.get(url) as response:
                    text = await response.text()
    assert value(text, 'vigil_analyzer_queue_depth{priority="warning"}') == 1
    assert value(text, 'vigil_analyzer_queue_depth{priority="critical"}') == 0
    for name in CONTRACT:
        assert any(line.startswith(name) for line in text.splitlines()), name


def shed(priority: str) -> float:
    sample = "vigil_analyzer_shed_jobs_total"
    return REGISTRY.get_sample_value(sample, {"priority": priority}) or 0.0


async def test_shed_jobs_are_counted_once_however_many_replicas(
    redis: Redis, base_env: dict[str, str]
) -> None:
    queue = JobQueue(redis, Scripts(redis))
    await queue.configure(2)
    for i in range(5):  # no analyzer runs yet: three of these are shed
        await queue.enqueue(f"j{i}", 1, {"kind": "alert", "episode_id": f"e{i}"})
    before = shed("info")
    env = {**base_env, "VIGIL_QUEUE_REAP_SECONDS": "0.05", "VIGIL_QUEUE_MAX_DEPTH": "2"}
    async with running("analyzer", env), running("analyzer", env):  # two replicas

        async def counted() -> bool:
            return shed("info") >= before + 3

        await until(counted, what="shed jobs counted")
        # Both replicas keep reading the shed records: none is counted twice.
        pending = await redis.xpending("vigil:queue:shed", "analyzer-shed")
        assert pending["pending"] == 0
    assert shed("info") == before + 3
