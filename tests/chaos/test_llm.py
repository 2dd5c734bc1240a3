"""The model endpoint down, slow and in a 429 storm, under steady load from devices.

The analyzer talks to the OpenAI-compatible test server through a fault proxy. In every
fault: alerts keep reaching the dashboard, the built-in analyzer answers each diagnosis
(`source: builtin`, with a `note` saying why), and the circuit breaker opens. After the
endpoint recovers, model answers resume on their own. At the end the checker finds no
acknowledged reading lost, no alert missing on the dashboard and no job unanswered.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from services.common.redis_client import connect
from tests.chaos.scale import Scale
from tests.support.cluster import FAULT_ENV, Cluster
from tests.support.dashboard import Dashboard
from tests.support.faultproxy import FaultProxy
from tests.support.fleet import Fleet
from tests.support.netfaults import EpisodeChecker
from tests.support.openai_server import OpenAIServer, model_env, openai_server, rate_limited, slow

pytestmark = pytest.mark.chaos

BREAKER_COOLDOWN_S = 2.0
LLM_TIMEOUT_S = 1.0
PHASE_S = 30.0  # bound on each wait of a phase: the breaker's cooldown and a few jobs
#: What each fault's built-in answers must say.
NOTES = {
    "down": ("cannot reach the model", "model circuit open"),
    "slow": ("the model timed out", "model circuit open"),
    "429 storm": ("rate limited by the model provider", "model circuit open"),
}


def _analyzer_env(server: OpenAIServer, proxy: FaultProxy) -> dict[str, str]:
    env = model_env(server)
    env["OPENAI_BASE_URL"] = f"http://{proxy.address}/v1"
    return {
        **env,
        "VIGIL_LLM_TIMEOUT_SECONDS": str(LLM_TIMEOUT_S),
        "VIGIL_LLM_RETRIES": "1",
        "VIGIL_LLM_BACKOFF_SECONDS": "0.05",
        "VIGIL_LLM_BREAKER_FAILURES": "3",
        "VIGIL_LLM_BREAKER_COOLDOWN_SECONDS": str(BREAKER_COOLDOWN_S),
        "VIGIL_LLM_REQUESTS_PER_MINUTE": "100000",
        "VIGIL_LLM_TOKENS_PER_MINUTE": "100000000",
        "VIGIL_LLM_DAILY_BUDGET": "1000",
        # Every diagnosis asks the model again (no answer is reused from a cache), so
        # recovery shows as fresh model answers.
        "VIGIL_CACHE_L1_SIZE": "0",
        "VIGIL_CACHE_TTL_INFO_SECONDS": "1",
        "VIGIL_CACHE_TTL_WARNING_SECONDS": "1",
        "VIGIL_CACHE_TTL_CRITICAL_SECONDS": "1",
    }


@dataclass
class LlmPhase:
    fault: str
    alerts: int = 0  # alert events that reached the dashboard during the fault
    builtin: int = 0  # built-in diagnoses (with a note) published during the fault
    notes: set[str] = field(default_factory=set)
    breaker_opened: bool = False
    recovered_s: float = 0.0  # heal -> the next model answer on the dashboard

    def line(self) -> str:
        return (
            f"  llm {self.fault:<10} alerts on dashboard {self.alerts}, built-in answers "
            f"{self.builtin}, breaker opened {self.breaker_opened}, model answers back "
            f"{self.recovered_s:.1f} s after recovery; notes: {sorted(self.notes)}"
        )


async def _metric(http: aiohttp.ClientSession, url: str, name: str) -> float:
    async with http.get(url) as response:
        text = await response.text()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def _until(check: Any, timeout_s: float) -> None:
    """Until `check()` (a coroutine function) is true; these facts have no event."""
    deadline = time.monotonic() + timeout_s
    while not await check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"not within {timeout_s:g} s: {check.__doc__}")
        await asyncio.sleep(0.1)


def _since(dashboard: Dashboard, start: int) -> list[dict[str, Any]]:
    return [event for _, event in dashboard.received[start:]]


def _insights(events: list[dict[str, Any]], source: str) -> list[dict[str, Any]]:
    return [e for e in events if e.get("kind") == "insight" and e.get("source") == source]


async def _fault(
    fault: str,
    *,
    server: OpenAIServer,
    proxy: FaultProxy,
    dashboard: Dashboard,
    http: aiohttp.ClientSession,
    metrics_url: str,
) -> LlmPhase:
    phase = LlmPhase(fault)
    opened = await _metric(http, metrics_url, 'vigil_analyzer_breaker_transitions_total{to="open"}')
    start = len(dashboard.received)
    if fault == "down":
        proxy.cut()
    elif fault == "slow":
        server.default = slow(LLM_TIMEOUT_S * 3)
    else:
        server.default = rate_limited("0.05")

    async def breaker_opened() -> bool:
        """the breaker opens"""
        name = 'vigil_analyzer_breaker_transitions_total{to="open"}'
        return await _metric(http, metrics_url, name) > opened

    async def answered_by_builtin() -> bool:
        """alerts reach the dashboard and the built-in analyzer answers with a note"""
        events = _since(dashboard, start)
        return any(e.get("kind") == "alert" for e in events) and any(
            e.get("note") for e in _insights(events, "builtin")
        )

    await _until(breaker_opened, PHASE_S)
    phase.breaker_opened = True
    await _until(answered_by_builtin, PHASE_S)
    events = _since(dashboard, start)
    phase.alerts = sum(e.get("kind") == "alert" for e in events)
    noted = [e for e in _insights(events, "builtin") if e.get("note")]
    phase.builtin = len(noted)
    phase.notes = {str(e["note"]).split(";")[0] for e in noted}

    proxy.heal()
    server.default = slow(0.0)  # a plain good answer
    healed, start = time.monotonic(), len(dashboard.received)

    async def model_back() -> bool:
        """model answers resume after recovery"""
        return bool(_insights(_since(dashboard, start), "model"))

    await _until(model_back, BREAKER_COOLDOWN_S + PHASE_S)
    phase.recovered_s = time.monotonic() - healed
    return phase


@pytest.mark.timeout(600)
async def test_model_down_slow_and_429_storm_alerts_keep_flowing(
    tmp_path: Path, size: Scale
) -> None:
    phases: list[LlmPhase] = []
    async with openai_server() as server:
        proxy = FaultProxy("127.0.0.1", int(server.url.rsplit(":", 1)[1]), "analyzer->model")
        await proxy.start()
        stack = Cluster(tmp_path, FAULT_ENV, {"analyzer": _analyzer_env(server, proxy)})
        try:
            await stack.start()
            metrics_url = f"http://127.0.0.1:{stack.services['analyzer'].metrics_port}/metrics"
            redis = connect(stack.redis_url)
            dashboard = Dashboard(stack.dashboard_url, stack.dashboard_token())
            fleet = Fleet(stack.ingest, stack.device_token, size.llm_devices, size.rate,
                          prefix="llm")  # fmt: skip
            async with aiohttp.ClientSession() as http:
                try:
                    await dashboard.start()
                    await fleet.start()
                    started = time.monotonic()

                    async def model_answers() -> bool:
                        """the model answers at first"""
                        return bool(_insights(_since(dashboard, 0), "model"))

                    await _until(model_answers, PHASE_S)
                    for _ in range(size.llm_rounds):
                        for fault in NOTES:
                            phases.append(
                                await _fault(
                                    fault,
                                    server=server,
                                    proxy=proxy,
                                    dashboard=dashboard,
                                    http=http,
                                    metrics_url=metrics_url,
                                )
                            )
                    await fleet.drain()
                    await fleet.close()
                    checker = EpisodeChecker(redis, fleet, dashboard)
                    await checker.converge()
                    report = await checker.report(
                        "model down, slow, 429 storm", stack.kills, time.monotonic() - started
                    )
                finally:
                    await fleet.close()
                    await dashboard.stop()
                    await redis.aclose()
        finally:
            await stack.stop()
            await proxy.stop()
    report.publish(tmp_path)
    for phase in phases:
        print(phase.line())
    calls = Counter(call.status for call in server.calls)
    print(f"  model calls by HTTP status: {dict(sorted(calls.items()))}")

    assert report.problems == []
    assert report.batches_acked == report.batches_sent > 0
    assert report.readings_lost == 0 and report.readings_duplicated == 0
    assert report.alerts > 0 and report.alerts_missing_on_dashboard == 0
    assert report.dashboard_duplicated == 0
    assert report.insights_duplicated == 0  # no kill: no job is answered twice
    assert report.jobs_lost == 0 and report.jobs_pending == 0 and report.dead_letters == 0
    for phase in phases:
        assert phase.breaker_opened and phase.alerts > 0 and phase.builtin > 0, phase
        assert phase.notes, phase
        assert all(note.startswith(NOTES[phase.fault]) for note in phase.notes), phase
    assert calls.get(429, 0) > 0 and calls.get(200, 0) > 0
