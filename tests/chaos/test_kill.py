"""kill -9 of ingest, the detector, the analyzer and the notifier, in turn, under steady
load from simulated devices, each restarted at once on its ports. Afterwards the checker
holds what the devices sent and got acknowledged against Redis, the analyzer's insights
and a dashboard that stayed subscribed throughout: nothing acknowledged is lost, no job
is lost, no alert is missing on the dashboard, and nothing is doubled."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from services.common.redis_client import connect
from services.simulator.device import WRITE_RACE
from tests.chaos.scale import Scale
from tests.support.checker import Checker
from tests.support.cluster import FAULT_ENV, SERVICES, cluster
from tests.support.dashboard import Dashboard
from tests.support.fleet import Fleet

pytestmark = pytest.mark.chaos


@pytest.mark.timeout(900)
async def test_kill_9_of_every_service_under_load_loses_nothing(
    tmp_path: Path, size: Scale
) -> None:
    async with cluster(tmp_path, FAULT_ENV) as stack:
        redis = connect(stack.redis_url)
        dashboard = Dashboard(stack.dashboard_url, stack.dashboard_token())
        fleet = Fleet(stack.ingest, stack.device_token, size.devices, size.rate)
        try:
            await dashboard.start()
            await fleet.start()
            started = time.monotonic()
            for _ in range(size.kills_each):
                for name in ("ingest", "detector", "analyzer", "notifier"):
                    await fleet.progress(int(size.devices * size.rate * size.gap_s))
                    await stack.kill(name)
                    await stack.restart(name)
            await fleet.progress(int(size.devices * size.rate * size.gap_s))
            await fleet.drain()
            await fleet.close()
            checker = Checker(redis, fleet, dashboard)
            await checker.converge()
            report = await checker.report("kill -9", stack.kills, time.monotonic() - started)
        finally:
            await fleet.close()
            await dashboard.stop()
            await redis.aclose()
    report.publish(tmp_path)
    assert sum(stack.kills[name] for name in SERVICES) == 4 * size.kills_each
    unexpected = {n: len(stack.unexpected_errors(n)) for n in SERVICES}
    assert unexpected == dict.fromkeys(SERVICES, 0), unexpected
    assert report.batches_sent > 0 and report.alerts > 0
    assert report.losses() == {}
    # Devices are told UNAVAILABLE (or lose that status to grpcio's write race) and
    # reconnect; nothing else.
    assert set(report.ended) <= {"UNAVAILABLE", WRITE_RACE}, report.said
    # A detector restarted from its last snapshot may judge a few episode changes again
    # (a resolve it had already sent): each is the same alert id, state and severity.
    assert report.alerts_repeated <= size.devices * stack.kills["detector"]
