"""The HTTP API (JSON; errors are problem+json from web.py's middleware).

GET  /api/alerts?state=open|resolved|all&device=...&min_severity=...&limit=...
POST /api/alerts/{alert_id}/ack          {"note": str, "false_alarm": bool}
GET  /api/devices                         devices with status and open alerts
GET  /api/devices/{device_id}/history?window=15m&points=60
GET  /api/stats                           readings/s, open alerts, queue depth, spend today
POST /api/analysis                        {"device_id", "window", "priority"} -> ticket
GET  /api/analysis/{ticket}               status, progress, result

Alerts come from the hub's book (derived from the stream), so every replica answers
alike; an ack is published as an `ack` event and reaches the book (and the detector)
through the stream. Handlers validate every input and never trust stored JSON.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from redis.asyncio import Redis

from services.common import keys
from services.common import metrics as common_metrics
from services.common.errors import InvalidArgument, NotFound
from services.common.events import publish, rfc3339, severity_name
from services.notifier import durations, history, metrics
from services.notifier.access import VIEWER
from services.notifier.analysis import AnalyzerClient, check_ticket, start_request
from services.notifier.filters import Filter
from services.notifier.hub import Hub
from services.notifier.protocol import NAME, min_severity, names
from services.notifier.settings import NotifierSettings

MAX_NOTE = 1000
MAX_DEVICES = 5000
READINGS_WINDOW_S = 10


def _int(request: web.Request, name: str, default: int, lo: int, hi: int) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or not lo <= int(raw) <= hi:
        raise InvalidArgument(name, f"must be an integer between {lo} and {hi}")
    return int(raw)


async def _json_body(request: web.Request) -> Any:
    if not request.can_read_body:
        return {}
    try:
        return await request.json(loads=json.loads)
    except ValueError:
        raise InvalidArgument("body", "not valid JSON") from None


def _device(value: str) -> str:
    if not NAME.fullmatch(value):
        raise InvalidArgument("device_id", "must match [A-Za-z0-9_.:-]{1,128}")
    return value


async def redis_now(redis: Redis) -> float:
    """Redis's clock, which the scripts that write stats and history use."""
    seconds, micros = await redis.time()
    return float(seconds) + micros / 1e6


class Api:
    def __init__(
        self, settings: NotifierSettings, redis: Redis, hub: Hub, analyzer: AnalyzerClient
    ) -> None:
        self.settings = settings
        self.redis = redis
        self.hub = hub
        self.analyzer = analyzer

    def routes(self, app: web.Application) -> None:
        add = app.router
        add.add_get("/api/alerts", self.alerts, name="alerts")
        add.add_post("/api/alerts/{alert_id}/ack", self.ack, name="ack")
        add.add_get("/api/devices", self.devices, name="devices")
        add.add_get("/api/devices/{device_id}/history", self.history, name="history")
        add.add_get("/api/stats", self.stats, name="stats")
        add.add_post("/api/analysis", self.start_analysis, name="start_analysis")
        add.add_get("/api/analysis/{ticket}", self.get_analysis, name="get_analysis")

    async def alerts(self, request: web.Request) -> web.Response:
        state = request.query.get("state", "all")
        if state not in ("open", "resolved", "all"):
            raise InvalidArgument("state", "must be open, resolved or all")
        filt = Filter(
            devices=names(request.query.getall("device", []) or None, "device"),
            min_severity=min_severity(request.query.get("min_severity")),
        )
        limit = _int(request, "limit", 500, 1, 5000)
        # No await between the two: the alerts are exactly the state at `last_id`, so a
        # client that subscribes with it misses nothing and sees nothing twice.
        position = self.hub.position
        found = self.hub.book.select(filt, self.hub.labels, state, limit)
        return web.json_response({"alerts": found, "last_id": position})

    async def ack(self, request: web.Request) -> web.Response:
        alert = self.hub.book.get(request.match_info["alert_id"])
        if alert is None:
            raise NotFound("no such alert (it may have left the event stream)")
        body = await _json_body(request)
        if not isinstance(body, dict):
            raise InvalidArgument("body", "must be a JSON object")
        note, false_alarm = body.get("note", ""), body.get("false_alarm", False)
        if not isinstance(note, str) or len(note) > MAX_NOTE:
            raise InvalidArgument("note", f"must be text of at most {MAX_NOTE} characters")
        if not all(ch.isprintable() or ch == "\n" for ch in note):
            raise InvalidArgument("note", "must be printable text")
        if not isinstance(false_alarm, bool):
            raise InvalidArgument("false_alarm", "must be true or false")
        event = {
            "kind": "ack",
            "alert_id": alert.alert_id,
            "episode_id": alert.facts.get("episode_id", alert.alert_id),
            "device_id": alert.device_id,
            "sensor": alert.sensor,
            "severity": severity_name(alert.severity),
            "false_alarm": false_alarm,
            "note": note,
            "by": request[VIEWER],
            "time": rfc3339(await redis_now(self.redis)),
        }
        entry_id = await publish(self.redis, event, self.settings.events_maxlen)
        common_metrics.EVENTS_PUBLISHED.labels("ack").inc()
        metrics.ACKS.labels("false_alarm" if false_alarm else "ack").inc()
        return web.json_response({"id": entry_id, "ack": event}, status=201)

    async def devices(self, request: web.Request) -> web.Response:
        open_alerts = self.hub.book.open_by_device()
        found: dict[str, dict[str, Any]] = {}
        async for device, raw in self.redis.hscan_iter(keys.DEVICES, count=500):
            try:
                record = json.loads(raw)
            except ValueError:
                continue
            if isinstance(record, dict):
                found[str(device)] = record
            if len(found) >= MAX_DEVICES:
                break
        for device in open_alerts.keys() - found.keys():
            # Known from its alerts only: ingest has not reported it (yet).
            found[device] = {"device_id": device, "labels": self.hub.labels.get(device, {}),
                             "status": "unknown"}  # fmt: skip
        devices: list[dict[str, Any]] = []
        for device, record in found.items():
            count, worst = open_alerts.get(device, (0, 0))
            devices.append({
                "device_id": device,
                "labels": record.get("labels") if isinstance(record.get("labels"), dict) else {},
                "status": str(record.get("status") or "unknown"),
                "last_seen": record.get("last_seen"),
                "connected_at": record.get("connected_at"),
                "open_alerts": count,
                "worst_severity": severity_name(worst),
            })  # fmt: skip
        devices.sort(key=lambda d: (-d["open_alerts"], d["device_id"]))
        return web.json_response({"devices": devices})

    async def history(self, request: web.Request) -> web.Response:
        device = _device(request.match_info["device_id"])
        window = durations.seconds(
            request.query.get("window"), "window", default=900, lo=10, hi=86_400
        )
        points = _int(request, "points", 60, 2, 500)
        now = await redis_now(self.redis)
        readings, truncated = await history.recent(self.redis, device, now, window)
        return web.json_response({
            "device_id": device,
            "from": now - window,
            "to": now,
            "step": window / points,
            "sensors": history.downsample(readings, now - window, now, points),
            "truncated": truncated,
        })  # fmt: skip

    async def stats(self, request: web.Request) -> web.Response:
        now = int(await redis_now(self.redis))
        day = datetime.fromtimestamp(now, tz=UTC).strftime("%Y-%m-%d")
        async with self.redis.pipeline(transaction=False) as pipe:
            for second in range(now - READINGS_WINDOW_S, now):
                pipe.get(keys.readings_counter(second))
            pipe.zcard(keys.QUEUE)
            pipe.get(keys.spend(day))
            replies = await pipe.execute()
        *counts, depth, spend = replies
        return web.json_response({
            "readings_per_second": sum(_number(c) for c in counts) / READINGS_WINDOW_S,
            "open_alerts": self.hub.book.open_count,
            "queue_depth": int(depth),
            "llm_spend_today": _number(spend),
            "day": day,
        })  # fmt: skip

    async def start_analysis(self, request: web.Request) -> web.Response:
        ticket = await self.analyzer.start(start_request(await _json_body(request)))
        return web.json_response({"ticket": ticket}, status=202)

    async def get_analysis(self, request: web.Request) -> web.Response:
        ticket = check_ticket(request.match_info["ticket"])
        return web.json_response(await self.analyzer.get(ticket))


def _number(raw: Any) -> float:
    try:
        return float(raw) if raw is not None else 0.0
    except ValueError:
        return 0.0
