"""Network faults between the services, under steady load: every link (ingest ->
detector, ingest -> Redis, analyzer -> Redis, notifier -> Redis) goes through a fault
proxy that in turn delays, blackholes and cuts it, then heals it.

Each fault phase must end in bounded time: deadlines fire instead of calls waiting
forever (devices see UNAVAILABLE or DEADLINE_EXCEEDED, and resend), retries are
bounded, and after healing the system catches up on its own. Afterwards the checker
holds what devices sent and got acknowledged against Redis, the insights and a
dashboard that stayed subscribed: nothing acknowledged is lost or doubled.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from redis.asyncio import Redis

from services.common.events import newest_id
from services.common.redis_client import connect
from tests.chaos.scale import Scale
from tests.support.cluster import FAULT_ENV
from tests.support.dashboard import Dashboard
from tests.support.faultproxy import FaultProxy
from tests.support.fleet import Fleet
from tests.support.netfaults import (
    LINKS,
    EpisodeChecker,
    Phase,
    ended_since,
    proxied,
    retried_only,
    write_races,
)

pytestmark = pytest.mark.chaos

DETECT_TIMEOUT_S = 1.0
#: A fault phase, from heal to the fleet acking again, must end within this; it covers a
#: device's longest reconnect backoff (5 s) and Redis's retries of a reset connection.
RECOVER_S = 30.0
#: What a device may be told when a link behind ingest fails: "reconnect and resend".
#: Never RESOURCE_EXHAUSTED (it broke no limit) nor INTERNAL.
RETRYABLE = {"UNAVAILABLE", "DEADLINE_EXCEEDED"}
ENV = {**FAULT_ENV, "VIGIL_DETECT_TIMEOUT_SECONDS": str(DETECT_TIMEOUT_S)}


async def _until_streams_end(fleet: Fleet, before: dict[str, int], timeout_s: float) -> None:
    """Until some device stream has ended since `before` (a deadline or a reset fired)."""
    deadline = time.monotonic() + timeout_s
    while not ended_since(fleet, before) and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.05)  # device stats have no event to await


async def _phase(
    link: str,
    fault: str,
    *,
    proxy: FaultProxy,
    fleet: Fleet,
    dashboard: Dashboard,
    redis: Redis,
    size: Scale,
) -> Phase:
    phase = Phase(link, fault)
    before = fleet.ended()
    started = time.monotonic()
    if fault == "delay":
        proxy.delay(size.net_delay_s)
        # A slow link is slower, not broken: batches are still acknowledged through it.
        await fleet.progress(int(size.devices * size.rate * size.net_hold_s / 2), RECOVER_S)
    elif fault == "outage":
        proxy.cut()
        await asyncio.sleep(size.net_outage_s)  # the outage lasts this long
    elif fault == "blackhole":
        proxy.drop()
        await asyncio.sleep(size.net_blackhole_s)  # the blackhole lasts this long
    else:
        proxy.drop() if fault == "drop" else proxy.cut()
        if link == "ingest->detector":
            # The Detect deadline (or the reset) must end the devices' streams.
            await _until_streams_end(fleet, before, DETECT_TIMEOUT_S + 5.0)
        else:
            await asyncio.sleep(size.net_hold_s)  # the fault lasts this long
    phase.held_s = time.monotonic() - started
    proxy.heal()
    healed = time.monotonic()
    await fleet.progress(int(size.devices * size.rate), RECOVER_S)
    newest = await newest_id(redis)  # read directly, not through a proxy
    if newest is not None:
        await dashboard.wait_for(newest, RECOVER_S)
    phase.recovered_s = time.monotonic() - healed
    phase.ended = ended_since(fleet, before)
    return phase


@pytest.mark.timeout(900)
async def test_network_faults_end_in_bounded_time_and_lose_nothing(
    tmp_path: Path, size: Scale
) -> None:
    phases: list[Phase] = []
    async with proxied(tmp_path, ENV) as (stack, proxies):
        redis = connect(stack.redis_url)
        dashboard = Dashboard(stack.dashboard_url, stack.dashboard_token())
        fleet = Fleet(stack.ingest, stack.device_token, size.devices, size.rate, prefix="net")
        try:
            await dashboard.start()
            await fleet.start()
            started = time.monotonic()
            await fleet.progress(int(size.devices * size.rate))
            for link in LINKS:
                longer = [
                    *(["outage"] if link in size.net_outage_links else []),
                    *(["blackhole"] if link in size.net_blackhole_links else []),
                ]
                for fault in (*size.net_faults, *longer):
                    phases.append(
                        await _phase(
                            link,
                            fault,
                            proxy=proxies[link],
                            fleet=fleet,
                            dashboard=dashboard,
                            redis=redis,
                            size=size,
                        )
                    )
            await fleet.drain()
            await fleet.close()
            checker = EpisodeChecker(redis, fleet, dashboard)
            await checker.converge()
            report = await checker.report("network faults", stack.kills, time.monotonic() - started)
        finally:
            await fleet.close()
            await dashboard.stop()
            await redis.aclose()
    report.publish(tmp_path)
    print(f"  device streams whose status grpcio lost to a write race: {write_races(fleet)}")
    for phase in phases:
        print(phase.line())
    for link, proxy in proxies.items():
        print(f"  proxy {link:<17} {proxy.counters.line()}")

    assert report.batches_sent > 0 and report.alerts > 0
    assert report.losses() == {}
    # Every status a device saw told it to reconnect and resend: none was a failure
    # (grpcio may say INTERNAL when a write raced the end of a stream; the devices
    # count those).
    assert retried_only(report.ended, RETRYABLE), (report.ended, write_races(fleet))
    for phase in phases:
        # Where devices wait on the link, a fault that outlasts the deadline and the
        # retries ends their streams (they resend): no call waits forever.
        if (phase.link == "ingest->detector" and phase.fault in ("drop", "cut")) or (
            phase.link == "ingest->redis" and phase.fault in ("outage", "blackhole")
        ):
            assert phase.ended, f"{phase.link} {phase.fault}: no device saw a deadline fire"
    for proxy in proxies.values():
        assert proxy.counters.reset > 0 or "cut" not in size.net_faults
