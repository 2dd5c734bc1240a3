"""Analyzer replicas as real processes against one Redis and one model server: a
replica killed mid-job, and eight replicas under the shared limits and budget."""

from __future__ import annotations

import bisect
import time
from collections.abc import AsyncIterator, Callable

import pytest
from redis.asyncio import Redis

from services.analyzer.budget import Prices, utc_day
from services.common import keys
from tests.analyzer.alerts import events, job_done, jobs_done, raise_alert, wait_events
from tests.analyzer.processes import replicas, start_replica
from tests.support import openai_server as srv
from tests.support.openai_server import Call, OpenAIServer, model_env


@pytest.fixture
async def server() -> AsyncIterator[OpenAIServer]:
    async with srv.openai_server() as running_server:
        yield running_server


async def test_job_of_a_killed_replica_completes_on_another(
    redis: Redis, base_env: dict[str, str], server: OpenAIServer
) -> None:
    server.then(srv.slow(120))  # the first call hangs: its replica dies mid-job
    env = {
        **base_env,
        **model_env(server),
        "VIGIL_ANALYZER_CONCURRENCY": "1",
        "VIGIL_QUEUE_LEASE_SECONDS": "1",
        "VIGIL_QUEUE_REAP_SECONDS": "0.2",
        "VIGIL_SINGLE_FLIGHT_LOCK_SECONDS": "1",
    }
    async with replicas(1, env) as (doomed,):
        episode, job_id = await raise_alert(redis)
        await server.wait_calls(1)  # the doomed replica is inside the model call
        survivor = await start_replica(env)
        try:
            await survivor.ready
            doomed.kill()
            insights = await wait_events(redis, 2, "insight", alert_id=episode, timeout_s=20)
            await job_done(redis, job_id)
        finally:
            await survivor.stop()
    assert [i["source"] for i in insights] == ["builtin", "model"]
    assert len(await events(redis, "insight")) == 2  # one quick, one diagnosis: none lost
    assert [c.status for c in server.calls] == [0, 200]  # the hung call never answered
    assert await redis.zcard(keys.QUEUE_LEASES) == 0 and await redis.llen(keys.QUEUE_DEAD) == 0
    log = [line for line in survivor.lines if line.get("job_id") == job_id]
    assert not any(line.get("level") == "error" for line in log)


# --- Eight replicas: limits, single-flight across processes, budget -----------------

REPLICAS = 8
RPM = 1200  # 20 requests/s
TPM = 480_000  # 8,000 tokens/s
WINDOW_S = 10.0
PRICES = Prices(0.05, 0.1)  # per 1k tokens: 2 to 4 cents a call, to reach the budget
BUDGET = 9.0
BURST = 40  # same-pattern alerts at once
SMALL = 220  # distinct patterns, small prompts (~310 tokens): requests bind
LARGE = 100  # distinct patterns, large prompts (~800 tokens): tokens bind
LAST = 60  # more large ones, to spend the rest of the budget
BIG_LABELS = {f"note{k}": "x" * 150 for k in range(12)}


def busiest_window(calls: list[Call], value: Callable[[Call], float]) -> float:
    """The most of `value(call)` that arrived within any WINDOW_S seconds."""
    ordered = sorted(calls, key=lambda c: c.at)
    times = [c.at for c in ordered]
    best = 0.0
    for i, start in enumerate(times):
        end = bisect.bisect_left(times, start + WINDOW_S)
        best = max(best, sum(value(c) for c in ordered[i:end]))
    return best


def requests(call: Call) -> float:
    return 1.0


def tokens(call: Call) -> float:
    return float(call.total_tokens)


async def load(redis: Redis, name: str, count: int, labels: dict[str, str]) -> None:
    jobs = [
        (await raise_alert(redis, f"{name}-{i}", labels={**labels, "line": str(i)}))[1]
        for i in range(count)
    ]
    await jobs_done(redis, jobs, 60)


async def test_eight_replicas_share_limits_make_one_call_per_pattern_and_keep_the_budget(
    redis: Redis, base_env: dict[str, str], server: OpenAIServer
) -> None:
    env = {
        **base_env,
        **model_env(server),
        "VIGIL_ANALYZER_CONCURRENCY": "4",
        "VIGIL_LLM_REQUESTS_PER_MINUTE": str(RPM),
        "VIGIL_LLM_TOKENS_PER_MINUTE": str(TPM),
        "VIGIL_LLM_BURST_SECONDS": "0.05",
        "VIGIL_LLM_MAX_OUTPUT_TOKENS": "100",
        "VIGIL_LLM_DAILY_BUDGET": str(BUDGET),
        "VIGIL_LLM_PRICE_INPUT_PER_1K": str(PRICES.input_per_1k),
        "VIGIL_LLM_PRICE_OUTPUT_PER_1K": str(PRICES.output_per_1k),
    }
    async with replicas(REPLICAS, env):
        # A burst of one pattern on many devices: one model call, the rest from cache.
        burst = [
            await raise_alert(redis, f"burst-{i}", labels={"line": "burst"}) for i in range(BURST)
        ]
        await jobs_done(redis, [job for _, job in burst])
        assert [c.data["device_labels"] for c in server.calls] == [{"line": "burst"}]
        insights = [e for _, e in await events(redis, "insight")]
        for episode, _ in burst:
            sources = [e["source"] for e in insights if e["alert_id"] == episode]
            assert sources[-1] in ("model", "cache")

        # More distinct patterns than the limits allow: first the requests, then the
        # tokens are what holds the eight replicas back.
        await load(redis, "small", SMALL, {})
        small = server.calls[1:]
        await load(redis, "large", LARGE, BIG_LABELS)
        large = server.calls[1 + len(small) :]
        await load(redis, "last", LAST, BIG_LABELS)  # until the budget runs out
    calls = server.calls
    limits = {"requests": RPM * WINDOW_S / 60, "tokens": TPM * WINDOW_S / 60}
    seen = {
        "requests": busiest_window(calls, requests),
        "tokens": busiest_window(calls, tokens),
        "requests while small": busiest_window(small, requests),
        "tokens while large": busiest_window(large, tokens),
    }
    print(f"busiest {WINDOW_S:.0f} s windows: {seen}, limits {limits}, {len(calls)} calls")
    assert seen["requests"] <= limits["requests"] * 1.02
    assert seen["tokens"] <= limits["tokens"] * 1.02
    # Each limit was what held the replicas back in its phase (else this proves nothing):
    # all the phase's jobs were waiting at once, and calls came close to the limit.
    assert seen["requests while small"] >= 0.85 * limits["requests"]
    assert seen["tokens while large"] >= 0.85 * limits["tokens"]

    spent = float(await redis.get(keys.spend(utc_day(time.time()))) or 0)
    billed = sum(PRICES.cost(c.prompt_tokens, c.completion_tokens) for c in calls)
    assert billed <= BUDGET and spent <= BUDGET
    assert spent == pytest.approx(billed, rel=1e-6)
    notes = [e.get("note") for _, e in await events(redis, "insight") if e.get("note")]
    assert notes and set(notes) == {"daily LLM budget reached"}
