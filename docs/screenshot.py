"""Take docs/dashboard.png: the dashboard during a simulated incident on the real stack.

    .venv/bin/python docs/screenshot.py [docs/dashboard.png]

Starts `vigil up` (no built-in simulator), then plays a fleet of six machines through
ingest: fifteen minutes of normal readings (timestamped in the past, for the
sparklines), then an incident: press-2 overheats past warning into critical, pump-1
vibrates, chiller-1 loses pressure briefly and recovers. An operator acknowledges one
alert and marks another a false alarm through the HTTP API. Headless Chromium opens
the page and the screenshot is taken once every alert shows its insight.

Ingest owns `vigil:devices`, `vigil:history:{device}` and `vigil:stats:readings:*`.
Where the running ingest does not write them yet, this script writes what it sent in
exactly the documented formats, so the page shows device status, sparklines and
readings/s; it never writes them when ingest already does.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from grpc import aio
from redis.asyncio import Redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from playwright.async_api import expect  # noqa: E402
from vigil.v1 import common_pb2  # noqa: E402

from services.common import keys  # noqa: E402
from services.common.auth import dashboard_token, device_token  # noqa: E402
from services.common.events import rfc3339  # noqa: E402
from services.common.redis_client import connect  # noqa: E402
from services.common.timeconv import from_seconds  # noqa: E402
from services.simulator.device import Device  # noqa: E402
from tests.support.browser import chromium  # noqa: E402
from tests.support.stack import vigil_up  # noqa: E402

MACHINES = {
    "press-1": {"site": "plant-north", "line": "2"},
    "press-2": {"site": "plant-north", "line": "2"},
    "press-3": {"site": "plant-north", "line": "3"},
    "pump-1": {"site": "plant-south", "line": "1"},
    "pump-2": {"site": "plant-south", "line": "1"},
    "chiller-1": {"site": "dc-east", "room": "b"},
}
NORMAL = {"temperature": 62.0, "vibration": 2.6, "pressure": 5.0, "power": 41.0}
NOISE = {"temperature": 0.8, "vibration": 0.25, "pressure": 0.15, "power": 2.0}
BACKFILL_S, STEP_S = 900, 10


def normal(rng: random.Random, sensor: str, at: float, phase: float) -> float:
    wave = 0.03 * NORMAL[sensor] * math.sin(at / 240 + phase)
    return round(NORMAL[sensor] + wave + rng.gauss(0, NOISE[sensor]), 3)


class Mirror:
    """Writes the contract keys ingest owns, unless the running ingest writes them."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self.needed: bool | None = None

    async def check(self, device: str) -> None:
        if self.needed is None:
            self.needed = not await self.redis.exists(keys.history(device))

    async def batch(self, device: str, readings: list[list[Any]], online: bool = True) -> None:
        if not self.needed:
            return
        now = time.time()
        await self.redis.xadd(keys.history(device), {"readings": json.dumps(readings)}, maxlen=5000)
        second = int(now)
        await self.redis.incrby(keys.stats_readings(second), len(readings))
        await self.redis.expire(keys.stats_readings(second), 120)
        record = {"device_id": device, "labels": MACHINES[device],
                  "status": "online" if online else "offline",
                  "last_seen": rfc3339(now), "connected_at": rfc3339(now - BACKFILL_S)}  # fmt: skip
        await self.redis.hset(keys.DEVICES, device, json.dumps(record))


async def play(stack: dict[str, Any], out: Path) -> None:
    rng = random.Random(7)
    redis = connect(stack["redis_url"])
    mirror = Mirror(redis)
    secret = stack["secrets"]["device"]
    async with aio.insecure_channel(stack["ingest"]) as channel:
        devices = {
            name: Device(channel, name, device_token(secret, name), labels)
            for name, labels in MACHINES.items()
        }
        for device in devices.values():
            await device.start()
        phases = {name: rng.random() * 6 for name in MACHINES}
        start = time.time() - BACKFILL_S

        async def send(name: str, at: float, values: dict[str, float]) -> None:
            readings = [common_pb2.Reading(sensor=s, value=v, time=from_seconds(at))
                        for s, v in values.items()]  # fmt: skip
            await devices[name].send(readings)
            await devices[name].drain()
            await mirror.check(name)
            await mirror.batch(name, [[s, at, v] for s, v in values.items()])

        # Fifteen quiet minutes, for the sparklines.
        for step in range(BACKFILL_S // STEP_S):
            at = start + step * STEP_S
            for name in MACHINES:
                await send(name, at, {s: normal(rng, s, at, phases[name]) for s in NORMAL})

        async def incident() -> None:
            """One reading per machine per tick, until the screenshot is taken."""
            for tick in range(400):
                await tick_once(tick)
                await asyncio.sleep(0.25)

        async def tick_once(tick: int) -> None:
            at = time.time()
            for name in MACHINES:
                values = {s: normal(rng, s, at, phases[name]) for s in NORMAL}
                if name == "press-2":
                    values["temperature"] = round(min(74 + tick * 1.2, 101) + rng.random(), 2)
                    values["power"] = round(min(60 + tick * 0.9, 82) + rng.random(), 2)
                if name == "pump-1" and tick >= 8:
                    values["vibration"] = round(7.6 + rng.random() * 0.8, 2)
                if name == "chiller-1" and 4 <= tick < 10:
                    values["pressure"] = round(2.6 - rng.random() * 0.3, 2)
                await send(name, at, values)

        running = asyncio.create_task(incident())
        await asyncio.sleep(8)  # the incident unfolds (a show, not a test)
        await operator(stack, redis)
        await shoot(stack, out)
        running.cancel()
        for device in devices.values():
            await device.close()
    await redis.aclose()


async def operator(stack: dict[str, Any], redis: Redis) -> None:
    """An operator acknowledges the pump and marks the chiller's dip a false alarm."""
    token = dashboard_token(stack["secrets"]["dashboard"], "ops-anna")
    base = stack["dashboard"].split("/?")[0]
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(base, headers=headers) as http:
        async with http.get("/api/alerts?state=all") as response:
            alerts = (await response.json())["alerts"]
        for alert in alerts:
            if alert["device_id"] == "pump-1":
                body = {"note": "bearing noise known, maintenance booked", "false_alarm": False}
            elif alert["device_id"] == "chiller-1":
                body = {"note": "valve test", "false_alarm": True}
            else:
                continue
            async with http.post(f"/api/alerts/{alert['alert_id']}/ack", json=body) as response:
                response.raise_for_status()


async def shoot(stack: dict[str, Any], out: Path) -> None:
    async with chromium() as browser:
        page = await browser.new_page(viewport={"width": 1440, "height": 980})
        await page.goto(stack["dashboard"])
        await expect(page.locator("#connection")).to_have_text("live", timeout=15_000)
        press = page.locator(".alert", has=page.locator(".device", has_text="press-2")).first
        await expect(press.locator(".insight .source")).to_be_visible(timeout=20_000)
        await expect(page.locator(".spark polyline").first).to_be_attached(timeout=40_000)
        await expect(page.locator("#count-rate")).to_have_text(re.compile(r"\d"), timeout=10_000)
        await page.screenshot(path=str(out))
    print(f"wrote {out}")


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "docs" / "dashboard.png")
    with tempfile.TemporaryDirectory() as state, vigil_up(Path(state), "--no-simulator") as stack:
        asyncio.run(play(stack, out))


if __name__ == "__main__":
    main()
