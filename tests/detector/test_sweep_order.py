"""A silence alert's opening is written before its resolution, even when the device
comes back while the sweep is still writing the opening.

The resolution travels with a batch through ingest, the opening from the sweep: the
resolution used to win that race (seen after every ingest restart, when all devices
fall silent at once and come back a moment later), and dashboards got an alert
resolved before it was opened.
"""

from __future__ import annotations

import asyncio
import json

from redis.asyncio import Redis

from services.common import keys
from tests.detector.test_service import Clock, app_of, batch, detect, detector


async def test_device_back_while_its_offline_alert_is_written_resolves_after_it(
    base_env: dict[str, str], redis: Redis
) -> None:
    async with detector(base_env) as (service, stub):
        app = app_of(service)
        clock = Clock()
        app.detector.clock = clock
        for seq in range(1, 11):  # a batch every 10 s
            clock.now += 10
            await detect(stub, batch("kiln", seq, ("temperature", clock.now, 50.0)))
        clock.now += 60  # silent for 6x its cadence: offline
        await redis.execute_command("CLIENT", "PAUSE", 1000)  # Redis answers nobody for 1 s
        sweep = asyncio.create_task(app.sweeper.sweep())
        await asyncio.sleep(0)  # one step of the sweep: it decides, then waits on Redis
        assert app.sweeper.unwritten
        clock.now += 1
        [result] = await detect(stub, batch("kiln", 11, ("temperature", clock.now, 50.0)))
        assert list(result.episodes) == []  # the resolution waits for the opening
        [resent] = await detect(stub, batch("kiln", 11, ("temperature", clock.now, 50.0)))
        assert list(resent.episodes) == []  # and a resend does not bring it back
        assert await sweep == 2
        assert app.sweeper.unwritten == set()
        alerts = [json.loads(fields["data"]) for _, fields in await redis.xrange(keys.EVENTS)]
        assert [(a["state"], a["device_id"]) for a in alerts] == [
            ("opened", "kiln"),
            ("resolved", "kiln"),
        ]
        assert alerts[0]["alert_id"] == alerts[1]["alert_id"]
