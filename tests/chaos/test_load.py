"""Load and overload of the whole suite as processes.

Steady load: many devices connected at a steady rate, about 1 % of their readings
anomalous. Every service's memory stays bounded (peak RSS reported), no service logs an
error, no device stream fails, Redis stays within its configured caps, and the checker
finds every acknowledged batch applied once and every alert on the dashboard.

Overload: the suite's capacity is measured first (devices sending as fast as Flow lets
them), then the devices are asked for five times that. Flow lowers the devices' windows,
the analysis queue sheds its lowest jobs (never a critical one) while critical alerts
still reach the dashboard and get their diagnosis, and when the load drops Flow opens
the windows again and the queue drains. Behaviour is asserted, never speed.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from pathlib import Path
from typing import cast

import aiohttp
import pytest

from services.common import keys
from services.common.events import SEVERITY_BY_NAME
from services.common.redis_client import connect
from tests.chaos.scale import Scale
from tests.support.cluster import cluster
from tests.support.dashboard import Dashboard
from tests.support.load import (
    MB,
    LoadFleet,
    Memory,
    metrics_url,
    redis_size,
    sample_for,
    scrape,
    shed_jobs,
    total,
)
from tests.support.netfaults import EpisodeChecker, retried_only
from tests.support.openai_server import model_env, openai_server, slow

pytestmark = pytest.mark.chaos

#: About 1 % of readings judged anomalous: an incident starts with this chance per
#: tick and lasts 4-12 ticks; the detector flags its first readings.
INCIDENT_RATE = 0.005
EVENTS_MAXLEN = 5000
HISTORY_MAXLEN = 200
QUEUE_MAX_DEPTH = 500
SEEN_CAP = 4096  # services.ingest.commit
#: MAXLEN ~ trims whole stream nodes (100 entries each by default).
STREAM_SLACK = 100
#: Memory is bounded when the second half of a run peaks at most this much above the
#: first half (which holds the start-up and every device's state being built).
RSS_GROWTH = 1.25
RSS_SLACK = 20 * MB

LOAD_ENV = {
    "VIGIL_HISTORY_RESOLUTION_SECONDS": "0",
    "VIGIL_HISTORY_MAXLEN": str(HISTORY_MAXLEN),
    "VIGIL_EVENTS_MAXLEN": str(EVENTS_MAXLEN),
    "VIGIL_QUEUE_MAX_DEPTH": str(QUEUE_MAX_DEPTH),
    "VIGIL_MAX_STREAMS": "5000",
}


async def _until_offline(dashboard: Dashboard, devices: set[str], timeout_s: float) -> None:
    """Until the dashboard has an offline alert (a device alert, no sensor) of each."""
    deadline = time.monotonic() + timeout_s
    while True:
        offline = {
            event.get("device_id")
            for _, event in dashboard.received
            if event.get("kind") == "alert" and event.get("state") == "opened"
            if not event.get("sensor")
        }
        if devices <= offline:
            return
        assert time.monotonic() < deadline, f"{len(devices - offline)} devices not offline"
        await asyncio.sleep(0.1)  # the dashboard's list has no event of its own to await


@pytest.mark.timeout(900)
async def test_steady_load_keeps_memory_and_redis_bounded(tmp_path: Path, size: Scale) -> None:
    memory = Memory()
    async with cluster(tmp_path, LOAD_ENV) as stack:
        redis = connect(stack.redis_url)
        dashboard = Dashboard(stack.dashboard_url, stack.dashboard_token())
        fleet = LoadFleet(
            stack.ingest,
            stack.device_token,
            size.load_devices,
            size.load_rate,
            prefix="load",
            incident_rate=INCIDENT_RATE,
        )
        try:
            await dashboard.start()
            await fleet.start(channels=8)
            started = time.monotonic()
            await sample_for(stack, memory, size.load_seconds, every_s=0.5)
            await fleet.drain()
            await fleet.close()
            # Silent now, every device is reported offline (5x its interval later): the
            # last alerts of the run, each with its diagnosis.
            await _until_offline(dashboard, set(fleet.ids), timeout_s=60.0)
            checker = EpisodeChecker(redis, fleet, dashboard)
            await checker.converge()
            report = await checker.report("steady load", stack.kills, time.monotonic() - started)
            sizes = await redis_size(redis, fleet.ids)
            presence = cast(dict[str, str], await redis.hgetall(keys.DEVICES))
        finally:
            await fleet.close()
            await dashboard.stop()
            await redis.aclose()
        errors = {name: stack.errors(name) for name in stack.services}
    report.publish(tmp_path)
    readings = report.readings_acked
    print(
        f"  {size.load_devices} devices at {size.load_rate:g} batches/s each for "
        f"{size.load_seconds:g} s: {report.batches_acked / size.load_seconds:.0f} batches/s "
        f"acked; anomalous readings {fleet.anomalous_readings()} of {readings} "
        f"({100 * fleet.anomalous_readings() / max(1, readings):.2f} %)"
    )
    print(memory.line(stack))
    print(sizes.line())

    assert {name: lines[:3] for name, lines in errors.items() if lines} == {}
    assert report.problems == [] and report.ended == {}
    assert report.batches_acked == report.batches_sent > 0
    assert report.batches_in_redis == report.batches_acked
    assert report.readings_lost == 0 and report.readings_duplicated == 0
    # Every device said goodbye when its stream closed: none is left "online".
    statuses = Counter(json.loads(presence[d])["status"] for d in fleet.ids)
    assert statuses == {"offline": size.load_devices}, statuses
    assert report.alerts > 0 and report.alerts_missing_on_dashboard == 0
    assert report.dashboard_duplicated == 0
    assert report.jobs_lost == 0 and report.jobs_pending == 0 and report.dead_letters == 0
    for name in stack.services:
        first, second = memory.growth(name)
        assert second <= first * RSS_GROWTH + RSS_SLACK, (name, first, second)
    assert sizes.events <= EVENTS_MAXLEN + STREAM_SLACK
    assert sizes.history_longest <= HISTORY_MAXLEN + STREAM_SLACK
    assert sizes.seen_largest <= SEEN_CAP
    assert sizes.queue <= QUEUE_MAX_DEPTH


OVERLOAD_MAX_WINDOW = 4
OVERLOAD_QUEUE_DEPTH = 20
RECOVERY_INCIDENT_RATE = 0.0005
RECOVER_S = 90.0
#: Overloaded, a device may be told to reconnect (a call past its deadline); a device
#: that obeys Flow breaks no limit, so never RESOURCE_EXHAUSTED.
RETRYABLE = {"UNAVAILABLE", "DEADLINE_EXCEEDED"}


@pytest.mark.timeout(900)
async def test_overload_lowers_flow_sheds_low_jobs_and_recovers(
    tmp_path: Path, size: Scale
) -> None:
    async with openai_server() as model:
        # A model that takes a while, asked every time and one job at a time: the
        # diagnoses fall behind the alerts, so the queue reaches its bound.
        model.default = slow(0.1)
        model.numbered = True
        analyzer = model_env(
            model,
            VIGIL_ANALYZER_CONCURRENCY="1",
            VIGIL_QUEUE_MAX_DEPTH=str(OVERLOAD_QUEUE_DEPTH),
            VIGIL_QUEUE_AGING_SECONDS="0",
            VIGIL_CACHE_L1_SIZE="0",
            VIGIL_CACHE_TTL_INFO_SECONDS="1",
            VIGIL_CACHE_TTL_WARNING_SECONDS="1",
            VIGIL_CACHE_TTL_CRITICAL_SECONDS="1",
            VIGIL_LLM_REQUESTS_PER_MINUTE="100000",
            VIGIL_LLM_TOKENS_PER_MINUTE="100000000",
            VIGIL_LLM_DAILY_BUDGET="1000",
        )
        # History and the event stream keep everything here (the checker counts every
        # reading and holds every alert's opening against its resolution).
        env = {
            **LOAD_ENV,
            "VIGIL_EVENTS_MAXLEN": "1000000",
            "VIGIL_MAX_IN_FLIGHT": str(OVERLOAD_MAX_WINDOW),
            # Saturated, 200 devices x 4 batches in flight wait far longer than this (it
            # would take 4,000 batches/s to stay under it; 2 cores ack ~1,100): Flow must
            # act. Recovery needs latency under half of it at 200 batches/s: at 0.05 s a
            # machine busy with other work (two busy loops beside the test) kept it at
            # 25-50 ms and the windows at 1-2 for the whole 90 s.
            "VIGIL_FLOW_TARGET_SECONDS": "0.2",
            "VIGIL_HISTORY_MAXLEN": "100000",
        }
        async with cluster(tmp_path, env, {"analyzer": analyzer}) as stack:
            redis = connect(stack.redis_url)
            dashboard = Dashboard(stack.dashboard_url, stack.dashboard_token())
            fleet = LoadFleet(
                stack.ingest,
                stack.device_token,
                size.overload_devices,
                1000.0,  # as fast as Flow allows: the capacity probe
                prefix="over",
                incident_rate=0.01,
            )
            ingest_metrics = metrics_url(stack, "ingest")
            windows: list[float] = []
            async with aiohttp.ClientSession() as http:

                async def window() -> float:
                    samples = await scrape(http, ingest_metrics)
                    windows.append(total(samples, "vigil_ingest_flow_window"))
                    return windows[-1]

                try:
                    await dashboard.start()
                    await fleet.start(channels=4)
                    started = time.monotonic()
                    # 1. capacity: what the suite acks with every device sending flat out
                    given = len(fleet.windows())
                    before = fleet.acks
                    await asyncio.sleep(size.overload_probe_s)  # the probe lasts this long
                    capacity = (fleet.acks - before) / size.overload_probe_s
                    # 2. overload: five times that asked of the devices
                    fleet.set_rate(5 * capacity / size.overload_devices)
                    before, t0 = fleet.acks, time.monotonic()
                    end = t0 + size.overload_seconds
                    while time.monotonic() < end:
                        await window()
                        await asyncio.sleep(0.25)  # sampling the window gauge over time
                    during = (fleet.acks - before) / (time.monotonic() - t0)
                    overload_windows = fleet.windows()[given:]
                    # 3. the load drops to one batch a second per device (far below the
                    # capacity; faster, the rate-of-change rules judge noise over tiny
                    # steps) with rare incidents: Flow opens, the queue drains
                    fleet.set_rate(min(1.0, 0.1 * capacity / size.overload_devices))
                    for machine in fleet.machines.values():
                        machine.incident_rate = RECOVERY_INCIDENT_RATE
                    t1 = time.monotonic()
                    while (
                        await window() < OVERLOAD_MAX_WINDOW or await redis.zcard("vigil:queue") > 0
                    ):
                        assert time.monotonic() - t1 < RECOVER_S, (
                            f"no recovery within {RECOVER_S:g} s: window {windows[-5:]}, "
                            f"queue {await redis.zcard('vigil:queue')}"
                        )
                        await asyncio.sleep(0.25)  # the gauge and the queue have no event
                    recovered_s = time.monotonic() - t1
                    await fleet.drain()
                    await fleet.close()
                    shed = await shed_jobs(redis)
                    checker = EpisodeChecker(redis, fleet, dashboard)
                    checker.excused = frozenset(shed)
                    await checker.converge()
                    report = await checker.report(
                        "overload 5x", stack.kills, time.monotonic() - started
                    )
                    analyzer_samples = await scrape(http, metrics_url(stack, "analyzer"))
                    critical_on_dashboard = sum(
                        1
                        for _, e in dashboard.received
                        if e.get("kind") == "alert" and e.get("severity") == "critical"
                    )
                finally:
                    await fleet.close()
                    await dashboard.stop()
                    await redis.aclose()
    report.publish(tmp_path)
    shed_by = {
        name: total(analyzer_samples, "vigil_analyzer_shed_jobs_total", priority=name)
        for name in SEVERITY_BY_NAME
    }
    print(
        f"  capacity {capacity:.0f} batches/s ({size.overload_devices} devices flat out); "
        f"asked 5x = {5 * capacity:.0f}/s, acked {during:.0f}/s during the overload; "
        f"windows given {min(overload_windows, default=0)}-{max(overload_windows, default=0)}"
        f" (max {OVERLOAD_MAX_WINDOW}); ingest window {min(windows):.0f}-{max(windows):.0f}; "
        f"shed {shed_by}; critical alerts on dashboard {critical_on_dashboard}; "
        f"recovered in {recovered_s:.1f} s"
    )

    assert report.batches_sent > 0
    assert report.losses() == {}
    assert retried_only(report.ended, RETRYABLE), report.ended
    # Flow lowered the devices' windows while they asked for too much ...
    assert overload_windows and min(overload_windows) < OVERLOAD_MAX_WINDOW
    assert min(windows) < OVERLOAD_MAX_WINDOW
    # ... the queue shed its lowest jobs and never a critical one ...
    assert shed and max(shed.values()) < SEVERITY_BY_NAME["critical"]
    assert shed_by["critical"] == 0 and shed_by["info"] + shed_by["warning"] > 0
    # ... every alert (critical ones too) reached the dashboard, every job that was not
    # shed got its diagnosis, and the system came back: window open, queue empty.
    assert critical_on_dashboard > 0
    assert windows[-1] == OVERLOAD_MAX_WINDOW
