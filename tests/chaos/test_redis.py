"""kill -9 of Redis under steady load, restarted on its port from its append-only file.

Outages alternate between short ones, which the services' Redis clients ride out with
their own retries (devices notice nothing), and long ones past those retries, where
device streams end UNAVAILABLE and devices come back and resend. No service is
restarted: each must reconnect by itself. Afterwards the checker finds every
acknowledged reading in Redis once, every alert on the dashboard and every job
answered. `appendfsync always` is what the stack runs (an ack implies the batch is on
disk); `make chaos` also runs `everysec`, where a kill -9 of the Redis process keeps
what Redis wrote to the kernel (see README, Reliability).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from services.common.redis_client import connect
from services.simulator.device import WRITE_RACE
from tests.chaos.scale import Scale, scale
from tests.support.checker import Checker
from tests.support.cluster import FAULT_ENV, SERVICES, cluster
from tests.support.dashboard import Dashboard
from tests.support.fleet import Fleet

pytestmark = pytest.mark.chaos

#: Redis down this long: within the clients' retries (about 5 s), then past them.
OUTAGES_S = (0.5, 7.0)
FSYNC = ("always", "everysec") if scale().full else ("always",)


@pytest.mark.timeout(900)
@pytest.mark.parametrize("appendfsync", FSYNC)
async def test_redis_kill_9_and_restart_loses_no_acknowledged_reading(
    tmp_path: Path, size: Scale, appendfsync: str
) -> None:
    async with cluster(tmp_path, FAULT_ENV, appendfsync=appendfsync) as stack:
        redis = connect(stack.redis_url)
        dashboard = Dashboard(stack.dashboard_url, stack.dashboard_token())
        fleet = Fleet(stack.ingest, stack.device_token, size.devices, size.rate)
        try:
            await dashboard.start()
            await fleet.start()
            started = time.monotonic()
            for i in range(size.redis_kills):
                await fleet.progress(int(size.devices * size.rate * size.gap_s))
                await stack.kill("redis")
                await asyncio.sleep(OUTAGES_S[i % len(OUTAGES_S)])  # the outage itself
                await stack.restart("redis")
            # Acks flow again without any service restarted: they reconnected.
            await fleet.progress(int(size.devices * size.rate * size.gap_s), timeout_s=90)
            await fleet.drain()
            await fleet.close()
            checker = Checker(redis, fleet, dashboard)
            await checker.converge()
            report = await checker.report(
                f"redis kill -9 ({appendfsync})", stack.kills, time.monotonic() - started
            )
            alive = {name: stack.services[name].current.process.returncode for name in SERVICES}
        finally:
            await fleet.close()
            await dashboard.stop()
            await redis.aclose()
    report.publish(tmp_path)
    assert stack.kills["redis"] == size.redis_kills
    assert alive == dict.fromkeys(SERVICES), f"a service exited: {alive}"
    assert all(len(stack.services[name].runs) == 1 for name in SERVICES)
    unexpected = {n: len(stack.unexpected_errors(n)) for n in SERVICES}
    assert unexpected == dict.fromkeys(SERVICES, 0), unexpected
    assert report.batches_sent > 0 and report.alerts > 0
    assert report.losses() == {}
    # Past the clients' retries devices are told UNAVAILABLE (or lose that status to
    # grpcio's write race), and nothing else.
    assert set(report.ended) <= {"UNAVAILABLE", WRITE_RACE}, report.said
    if size.redis_kills > 1:
        assert report.ended.get("UNAVAILABLE", 0) > 0
