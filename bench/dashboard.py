"""Reading -> dashboard: from the moment a device sends a reading past a critical
threshold to its `alert`, and to its `insight` (the analyzer's quick insight from the
built-in analyzer), arriving at a dashboard's WebSocket.

The whole suite as processes on a private Redis (AOF on): detector, ingest, analyzer
(no API key: the built-in analyzer), notifier; a WebSocket client subscribed to alerts
and insights; reference-client devices streaming their four sensors on a schedule.
Every so often a device's batch carries a temperature of 97 (critical above 95); it
resolves a few batches later. Latency counts from when that batch was due to be sent.
Baseline: the same batches' ack at the device (the alert is durable in Redis then),
so the ratio says what the hop to the screen adds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp
from vigil.v1 import common_pb2

from bench import fleet
from bench.procs import cluster
from bench.report import Figure, Target
from bench.size import Size
from bench.stats import percentile
from services.common.auth import dashboard_token
from services.common.timeconv import from_seconds
from services.simulator.fleet import SENSORS

STAGE = "dashboard"
RATE = 1.0  # batches per second per device, one reading per sensor each (the simulator's)
INCIDENT_EVERY = 10  # batches between a device's incidents (its episode resolves before)
SPIKE = 97.0  # temperature; the shipped rules say critical above 95


@dataclass
class Watch:
    """What the dashboard client saw, against when each incident was due."""

    due: dict[str, float] = field(default_factory=dict)  # device -> due time of its spike
    alert_of: dict[str, float] = field(default_factory=dict)  # alert id -> due time
    alert: list[float] = field(default_factory=list)
    insight: list[float] = field(default_factory=list)
    # The alert's path in two: due -> appended to vigil:events (the stream id is Redis's
    # clock, the same host's), and appended -> on the screen.
    to_stream: list[float] = field(default_factory=list)
    to_screen: list[float] = field(default_factory=list)
    wall_offset: float = field(default_factory=lambda: time.time() - time.perf_counter())
    unexpected: int = 0
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def settled(self, timeout_s: float) -> None:
        """Wait (at most `timeout_s`) until every incident sent has its alert and insight."""
        deadline = time.monotonic() + timeout_s
        while self.due or self.alert_of:
            self.changed.clear()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), remaining)

    def seen(self, entry_id: str, event: dict[str, object], now: float) -> None:
        self.changed.set()
        if event.get("kind") == "alert" and event.get("state") in ("opened", "escalated"):
            due = self.due.pop(str(event.get("device_id")), None)
            if due is None or event.get("severity") != "critical":
                self.unexpected += 1
                return
            self.alert.append(now - due)
            self.alert_of[str(event.get("alert_id"))] = due
            appended = int(entry_id.split("-", 1)[0]) / 1000 - self.wall_offset
            self.to_stream.append(appended - due)
            self.to_screen.append(now - appended)
        elif event.get("kind") == "insight":
            due = self.alert_of.pop(str(event.get("alert_id")), None)
            if due is not None:  # the first insight of an alert; later ones supersede it
                self.insight.append(now - due)


async def _listen(ws: aiohttp.ClientWebSocketResponse, watch: Watch) -> None:
    async for message in ws:
        if message.type != aiohttp.WSMsgType.TEXT:
            break
        now = time.perf_counter()
        frame = json.loads(message.data)
        if frame.get("type") == "event":
            watch.seen(frame["id"], frame["event"], now)


def _readings(now: float, rng: random.Random, spike: bool) -> list[common_pb2.Reading]:
    out = []
    for sensor, (level, noise, _, _) in SENSORS.items():
        value = SPIKE if spike and sensor == "temperature" else rng.gauss(level, noise)
        out.append(common_pb2.Reading(sensor=sensor, value=round(value, 3), time=from_seconds(now)))
    return out


async def run(size: Size, progress: Callable[[str], None]) -> list[Figure]:
    devices, seconds = size.pick((300, 30.0), (100, 7.0), (20, 2.0))
    warm = 1  # batches of normal readings before a device's first incident
    async with cluster() as running:
        progress("dashboard: starting detector, ingest, analyzer (built-in), notifier")
        detector = await running.start("detector")
        await running.start("analyzer", {"OPENAI_API_KEY": ""})
        notifier = await running.start("notifier")
        ingest = await running.start("ingest", {"VIGIL_DETECTOR_ADDRS": detector.grpc_addr})
        token = dashboard_token(running.dashboard_secret, "bench")
        watch = Watch()
        ack_latency: list[float] = []
        async with (
            aiohttp.ClientSession() as http,
            http.ws_connect(notifier.http_url + "/ws") as ws,
        ):
            await ws.send_str(
                json.dumps({"type": "subscribe", "token": token, "kinds": ["alert", "insight"]})
            )
            first = json.loads((await ws.receive(timeout=10)).data)
            if first != {"type": "subscribed"}:
                raise RuntimeError(f"the notifier answered {first}")
            listener = asyncio.create_task(_listen(ws, watch))
            ids = [f"dash-{d:03d}" for d in range(devices)]
            connected = await fleet.connect(ingest.grpc_addr, running.device_secret, ids)
            progress(
                f"dashboard: {devices} devices at {RATE:g} batches/s, incidents for {seconds:g} s"
            )
            try:
                await _stream(connected, watch, ack_latency, warm, seconds)
                await watch.settled(5.0)  # the last alerts and insights in flight
            finally:
                await connected.close()
                listener.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await listener
    params = {
        "devices": devices,
        "batches_per_s_per_device": RATE,
        "readings_per_s": round(devices * RATE * len(SENSORS)),
        "incidents_per_s": round(devices * RATE / INCIDENT_EVERY, 1),
        "seconds": seconds,
        "incidents": len(watch.alert),
        "insights": len(watch.insight),
        "alerts_missed": len(watch.due),
        "unexpected_alerts": watch.unexpected,
        "analyzer": "built-in (no API key)",
        "alert_due_to_stream_ms": _quantiles(watch.to_stream),
        "alert_stream_to_screen_ms": _quantiles(watch.to_screen),
        "client": "aiohttp WebSocket",
    }
    base = "the same batch acked at the device"
    figures = []
    for kind, samples in (("alert", watch.alert), ("insight", watch.insight)):
        for q in (0.5, 0.99):
            figures.append(
                Figure(
                    STAGE,
                    f"reading -> {kind} on a dashboard, p{q * 100:g}",
                    percentile(samples, q) * 1e3,
                    "ms",
                    percentile(ack_latency, q) * 1e3,
                    f"{base}, p{q * 100:g}",
                    Target("<", 50.0) if q == 0.99 else None,
                    params,
                )
            )
    return figures


def _quantiles(samples: list[float]) -> dict[str, float]:
    return {f"p{q * 100:g}": round(percentile(samples, q) * 1e3, 2) for q in (0.5, 0.99)}


async def _stream(
    connected: fleet.Fleet, watch: Watch, ack_latency: list[float], warm: int, seconds: float
) -> None:
    rng = random.Random(5)
    period = 1.0 / RATE
    started = time.perf_counter()

    async def one(index: int) -> None:
        device = connected.devices[index]
        due = started + rng.random() * period
        n = 0
        offset = rng.randrange(INCIDENT_EVERY)
        while due < started + seconds:
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)  # the schedule
            spike = n >= warm and (n + offset) % INCIDENT_EVERY == 0
            if spike:
                watch.due[device.device_id] = due
                connected.acks.due[(index, device.next_seq)] = due
            await device.send(_readings(time.time(), rng, spike))
            n += 1
            due += period
        await device.drain()

    await asyncio.gather(*(one(i) for i in range(len(connected.devices))))
    ack_latency.extend(connected.acks.latencies)
