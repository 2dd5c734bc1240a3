"""The HTTP API on a real notifier and Redis: alert state from the stream, acks,
devices, history, counters, auth and per-token rate limits."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from redis.asyncio import Redis

from services.common import keys
from services.common.auth import dashboard_token
from services.common.events import publish
from tests.notifier.conftest import Notifier, alert, insight, notifier_at
from tests.support.clients import ws_client


@asynccontextmanager
async def api(notifier: Notifier, token: str | None) -> AsyncIterator[aiohttp.ClientSession]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession(notifier.http, headers=headers) as session:
        yield session


async def call(
    session: aiohttp.ClientSession, method: str, path: str, **kwargs: Any
) -> tuple[int, Any, aiohttp.ClientResponse]:
    async with session.request(method, path, **kwargs) as response:
        return response.status, await response.json(content_type=None), response


async def taken_in(notifier: Notifier, token: str, redis: Redis, event: dict[str, Any]) -> str:
    """Publish `event` and return once this notifier has read (and applied) it."""
    async with ws_client(notifier.ws, token) as watcher:
        entry_id = await publish(redis, event)
        while (await watcher.event())[0] != entry_id:
            pass
    return entry_id


async def test_api_needs_a_dashboard_token(notifier: Notifier, token: str) -> None:
    for bad in (None, "nope", token[:-1] + ("0" if token[-1] != "0" else "1")):
        async with api(notifier, bad) as session:
            status, body, response = await call(session, "GET", "/api/alerts")
        assert status == 401 and body["status"] == 401
        assert response.content_type == "application/problem+json"


async def test_alerts_are_the_streams_state_with_the_latest_insight(
    notifier: Notifier, token: str, redis: Redis
) -> None:
    north = {"site": "north"}
    await publish(redis, alert("press-1", "warning", alert_id="ep-1", labels=north))
    await publish(redis, alert("press-1", "critical", alert_id="ep-1", state="escalated",
                               labels=north))  # fmt: skip
    await publish(redis, insight("press-1", "ep-1", source="builtin", n=1))
    await publish(redis, alert("press-2", "warning", alert_id="ep-2"))
    await publish(redis, alert("press-2", "warning", alert_id="ep-2", state="resolved", reasons=[]))
    last = await taken_in(notifier, token, redis, insight("press-1", "ep-1", source="model", n=2))
    async with api(notifier, token) as session:
        _, everything, _ = await call(session, "GET", "/api/alerts")
        _, open_only, _ = await call(session, "GET", "/api/alerts?state=open")
        _, resolved, _ = await call(session, "GET", "/api/alerts?state=resolved")
        _, by_device, _ = await call(session, "GET", "/api/alerts?device=press-2")
        _, critical, _ = await call(session, "GET", "/api/alerts?min_severity=critical")
    assert everything["last_id"] == last
    # Newest alert change first (the resolve of ep-2 came after the escalation of ep-1).
    assert [a["alert_id"] for a in everything["alerts"]] == ["ep-2", "ep-1"]
    [ep1] = open_only["alerts"]
    assert (ep1["state"], ep1["severity"], ep1["open"]) == ("escalated", "critical", True)
    assert ep1["labels"] == {"site": "north"}
    assert (ep1["insight"]["source"], ep1["insight"]["diagnosis"]) == ("model", "diagnosis 2")
    [ep2] = resolved["alerts"]
    assert (ep2["state"], ep2["open"]) == ("resolved", False)
    assert ep2["reasons"] == ["value 97.5 above critical threshold 95"]  # kept from the alert
    assert [a["alert_id"] for a in by_device["alerts"]] == ["ep-2"]
    assert [a["alert_id"] for a in critical["alerts"]] == ["ep-1"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("state=closed", "state"),
        ("min_severity=bad", "min_severity"),
        ("device=<img>", "device"),
        ("limit=0", "limit"),
        ("limit=abc", "limit"),
    ],
)
async def test_bad_alert_queries_are_400_naming_the_field(
    notifier: Notifier, token: str, query: str, field: str
) -> None:
    async with api(notifier, token) as session:
        status, body, _ = await call(session, "GET", f"/api/alerts?{query}")
    assert status == 400 and body["detail"].startswith(f"{field}:")


async def test_state_is_rebuilt_on_start_and_every_replica_sees_an_ack(
    base_env: dict[str, str], token: str, redis: Redis
) -> None:
    """Published before any notifier ran; acked on one replica, seen on the other."""
    await publish(redis, alert("press-1", "critical", alert_id="ep-1"))
    await publish(redis, insight("press-1", "ep-1"))
    async with notifier_at(base_env) as one, notifier_at(base_env) as two:
        async with api(one, token) as session:
            _, before, _ = await call(session, "GET", "/api/alerts")
            assert [a["alert_id"] for a in before["alerts"]] == ["ep-1"]
            assert before["alerts"][0]["insight"]["diagnosis"] == "diagnosis 0"
            async with ws_client(two.ws, token, kinds=["ack"]) as watcher:
                status, acked, _ = await call(
                    session, "POST", "/api/alerts/ep-1/ack", json={"note": "fan replaced"}
                )
                assert status == 201
                assert (await watcher.event())[0] == acked["id"]
        async with api(two, token) as session:
            _, after, _ = await call(session, "GET", "/api/alerts")
    ack = after["alerts"][0]["ack"]
    assert (ack["by"], ack["note"], ack["false_alarm"]) == ("tests", "fan replaced", False)


async def test_false_alarm_ack_is_published_in_the_contract_format(
    notifier: Notifier, token: str, redis: Redis
) -> None:
    await taken_in(notifier, token, redis, alert("press-1", "critical", alert_id="ep-9"))
    async with api(notifier, token) as session:
        status, body, _ = await call(
            session, "POST", "/api/alerts/ep-9/ack", json={"note": "sensor cleaned",
                                                           "false_alarm": True}
        )  # fmt: skip
    assert status == 201
    [(_, fields)] = await redis.xrange(keys.EVENTS, min=body["id"], max=body["id"])
    assert (fields["kind"], fields["device"], fields["sev"]) == ("ack", "press-1", "3")
    event = json.loads(fields["data"])
    assert event == body["ack"]
    assert {k: event[k] for k in event if k != "time"} == {
        "kind": "ack",
        "alert_id": "ep-9",
        "episode_id": "ep-9",
        "device_id": "press-1",
        "sensor": "temperature",
        "severity": "critical",
        "false_alarm": True,
        "note": "sensor cleaned",
        "by": "tests",
    }
    datetime.strptime(event["time"], "%Y-%m-%dT%H:%M:%S.%fZ")  # RFC 3339, UTC


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"note": "x" * 1001}, 400, "note"),
        ({"note": "bell \x07"}, 400, "note"),
        ({"false_alarm": "yes"}, 400, "false_alarm"),
        ([1, 2], 400, "body"),
        ("{not json", 400, "body"),
    ],
    ids=["long-note", "control-char", "false-alarm-type", "not-object", "malformed"],
)
async def test_bad_acks_are_refused_and_publish_nothing(
    notifier: Notifier, token: str, redis: Redis, body: Any, *, status: int, field: str
) -> None:
    await taken_in(notifier, token, redis, alert("press-1", alert_id="ep-1"))
    length = await redis.xlen(keys.EVENTS)
    data = body if isinstance(body, str) else json.dumps(body)
    async with api(notifier, token) as session:
        got, problem, _ = await call(
            session, "POST", "/api/alerts/ep-1/ack", data=data,
            headers={"Content-Type": "application/json"},
        )  # fmt: skip
    assert got == status and problem["detail"].startswith(f"{field}:")
    assert await redis.xlen(keys.EVENTS) == length


async def test_ack_of_an_unknown_alert_is_404(notifier: Notifier, token: str) -> None:
    async with api(notifier, token) as session:
        status, body, _ = await call(session, "POST", "/api/alerts/ep-none/ack", json={})
    assert status == 404 and body["title"] == "not found"


async def test_devices_come_from_the_hash_with_their_open_alerts(
    notifier: Notifier, token: str, redis: Redis
) -> None:
    def record(device: str, status: str) -> str:
        return json.dumps({
            "device_id": device, "labels": {"site": "north"}, "status": status,
            "last_seen": "2026-11-25T12:00:00.000Z", "connected_at": "2026-11-25T11:00:00.000Z",
        })  # fmt: skip

    await redis.hset(keys.DEVICES, mapping={
        "press-1": record("press-1", "online"),
        "press-2": record("press-2", "offline"),
        "broken": "{not json",
    })  # fmt: skip
    await publish(redis, alert("press-1", "warning", alert_id="ep-1", sensor="temperature"))
    await publish(redis, alert("press-1", "critical", alert_id="ep-2", sensor="vibration"))
    await taken_in(notifier, token, redis, alert("press-3", "info", alert_id="ep-3"))
    async with api(notifier, token) as session:
        status, body, _ = await call(session, "GET", "/api/devices")
    assert status == 200
    by_id = {d["device_id"]: d for d in body["devices"]}
    assert set(by_id) == {"press-1", "press-2", "press-3"}  # the broken record is skipped
    assert body["devices"][0]["device_id"] == "press-1"  # most open alerts first
    assert (by_id["press-1"]["status"], by_id["press-1"]["open_alerts"]) == ("online", 2)
    assert by_id["press-1"]["worst_severity"] == "critical"
    assert by_id["press-1"]["last_seen"] == "2026-11-25T12:00:00.000Z"
    assert (by_id["press-2"]["status"], by_id["press-2"]["open_alerts"]) == ("offline", 0)
    assert (by_id["press-3"]["status"], by_id["press-3"]["open_alerts"]) == ("unknown", 1)


async def test_history_is_downsampled_per_sensor(
    notifier: Notifier, token: str, redis: Redis
) -> None:
    now_s, _ = await redis.time()
    history = keys.history("press-1")
    for i in range(60):  # one batch a second for the last minute
        at = now_s - 59 + i
        readings = [["temperature", at, 60.0 + i % 2], ["vibration", at, 2.0]]
        await redis.xadd(history, {"readings": json.dumps(readings)}, id=f"{at * 1000}-0")
    await redis.xadd(history, {"readings": "{broken"})
    await redis.xadd(history, {"readings": json.dumps([["temperature", now_s, "hot"]])})
    async with api(notifier, token) as session:
        status, body, _ = await call(
            session, "GET", "/api/devices/press-1/history?window=2m&points=12"
        )
        _, bad, _ = await call(session, "GET", "/api/devices/press-1/history?window=forever")
    assert status == 200 and body["step"] == 10
    temperature = body["sensors"]["temperature"]
    assert 6 <= len(temperature) <= 7  # a minute of data in ten-second buckets
    assert all(60.0 <= lo <= mean <= hi <= 61.0 for _, mean, lo, hi in temperature)
    # Buckets end at the API's own clock, so an edge bucket may catch a single reading;
    # every other one holds ten, and so both values.
    assert all((lo, hi) == (60.0, 61.0) for _, _, lo, hi in temperature[1:-1])
    assert all(p[1:] == [2.0, 2.0, 2.0] for p in body["sensors"]["vibration"])
    assert [p[0] for p in temperature] == sorted(p[0] for p in temperature)
    assert bad["detail"].startswith("window:")


async def test_stats_sum_the_shared_counters(notifier: Notifier, token: str, redis: Redis) -> None:
    now_s, _ = await redis.time()
    # Every second the API's ten-second window can cover, should a second boundary pass
    # before it reads Redis's clock on a busy machine.
    for second in range(now_s - 10, now_s + 20):
        await redis.set(keys.readings_counter(second), 150, ex=120)
    await redis.set(keys.readings_counter(now_s - 30), 99_999, ex=120)  # too old to count
    day = datetime.fromtimestamp(now_s, tz=UTC).strftime("%Y-%m-%d")
    await redis.set(keys.spend(day), "1.25")
    await redis.zadd(keys.QUEUE, {"job-a": 1, "job-b": 2, "job-c": 3})
    await taken_in(notifier, token, redis, alert("press-1", alert_id="ep-1"))
    async with api(notifier, token) as session:
        status, body, _ = await call(session, "GET", "/api/stats")
    assert status == 200
    assert body["readings_per_second"] == 150.0
    assert (body["queue_depth"], body["open_alerts"], body["llm_spend_today"]) == (3, 1, 1.25)


async def test_each_token_has_its_own_rate_limit_with_retry_after(
    base_env: dict[str, str], dashboard_secret: str, redis: Redis
) -> None:
    env = {**base_env, "VIGIL_API_RATE_PER_MINUTE": "60", "VIGIL_API_BURST": "3"}
    greedy = dashboard_token(dashboard_secret, "greedy")
    other = dashboard_token(dashboard_secret, "other")
    async with notifier_at(env) as notifier:
        async with api(notifier, greedy) as session:
            codes = [(await call(session, "GET", "/api/stats"))[0] for _ in range(3)]
            status, problem, response = await call(session, "GET", "/api/stats")
        async with api(notifier, other) as session:
            assert (await call(session, "GET", "/api/stats"))[0] == 200
    assert codes == [200, 200, 200]
    assert status == 429 and problem["status"] == 429
    assert response.content_type == "application/problem+json"
    assert int(response.headers["Retry-After"]) >= 1


async def test_unknown_api_route_is_a_404_problem(notifier: Notifier, token: str) -> None:
    async with api(notifier, token) as session:
        status, body, _ = await call(session, "GET", "/api/nope")
    assert status == 404 and body["status"] == 404


async def test_health_endpoints_need_no_token(notifier: Notifier) -> None:
    async with aiohttp.ClientSession(notifier.http) as session:
        for path in ("/healthz", "/readyz"):
            async with session.get(path) as response:
                assert response.status == 200
        for missing in ("/nope", "/static/nope.js", "/static/..%2Fweb.py"):
            async with session.get(missing) as response:
                assert response.status == 404, missing
                assert response.content_type == "application/problem+json", missing
        async with session.get("/static/app.js") as response:
            assert response.status == 200 and "javascript" in response.content_type


async def test_readyz_turns_503_when_draining_starts_while_healthz_stays_up(
    base_env: dict[str, str], redis: Redis
) -> None:
    async with notifier_at(base_env) as notifier, aiohttp.ClientSession(notifier.http) as session:
        async with session.get("/readyz") as response:
            assert response.status == 200
        await notifier.service.app.drain()  # type: ignore[attr-defined]
        async with session.get("/readyz") as response:
            assert response.status == 503
            assert (await response.json(content_type=None))["detail"] == "shutting down"
        async with session.get("/healthz") as response:
            assert response.status == 200
