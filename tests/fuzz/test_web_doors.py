"""The notifier's web doors on a real server: WebSocket frames and every HTTP route,
fed hostile input.

A WebSocket frame gets `subscribed`, `pong` or an error frame naming the field (a bad
first frame: an error frame, then close 4400/4401; a frame over the size limit: close
1009); an HTTP request gets a status below 500, every refusal a problem+json with a
detail. After every case a well-formed client is served, and no service caught an
unexpected error.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
import pytest_asyncio
from hypothesis import given
from hypothesis import strategies as st
from redis.asyncio import Redis
from yarl import URL

from services.common.auth import dashboard_token, device_token
from services.common.embedded_redis import EmbeddedRedis
from services.common.events import publish
from services.common.redis_client import connect
from tests.fuzz import strategies as hs
from tests.fuzz.sizes import NETWORK, TIMEOUT, cases, ran
from tests.fuzz.suite import Suite, suite, unexpected_errors

pytestmark = [pytest.mark.fuzz, TIMEOUT, pytest.mark.asyncio(loop_scope="module")]

TIMEOUT_S = 10.0
ALERT_ID = "fuzz-alert"
WS_LIMIT = 65536  # VIGIL_WS_MAX_MESSAGE_BYTES default


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def services(
    redis_server: EmbeddedRedis, device_secret: str, dashboard_secret: str
) -> AsyncIterator[Suite]:
    async with suite(redis_server.url, device_secret, dashboard_secret) as started:
        client: Redis = connect(redis_server.url)
        try:
            await publish(client, alert_event(), 100_000)  # an alert the ack route knows
        finally:
            await client.aclose()
        yield started


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT_S)) as opened:
        yield opened


def alert_event() -> dict[str, Any]:
    return {
        "kind": "alert", "alert_id": ALERT_ID, "episode_id": ALERT_ID, "state": "opened",
        "device_id": "fuzz-dev", "labels": {}, "sensor": "t", "severity": "warning",
        "value": 1.0, "score": 0.9, "reasons": ["fuzz"], "time": "2026-11-25T12:00:00.000Z",
        "started": "2026-11-25T12:00:00.000Z",
    }  # fmt: skip


def tokens(services: Suite) -> dict[str, str | None]:
    secret = services.dashboard_secret
    return {
        "valid": services.token,
        "expired": f"fuzz.1.{dashboard_token(secret, 'fuzz', 1).rsplit('.', 1)[1]}",
        "forged": dashboard_token("00" * 32, "fuzz"),
        "device": device_token(services.device_secret, "fuzz"),
        "none": None,
    }


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | hs.floats | hs.names,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(hs.names, inner, max_size=4),
    max_leaves=12,
)
subscribes = st.fixed_dictionaries(
    {"type": st.sampled_from(["subscribe", "subscribe", "ping", "sub", ""])},
    optional={
        "token": st.sampled_from(["valid", "expired", "forged", "device"]) | json_values,
        "last_id": json_values | st.from_regex(r"\d{1,20}-\d{1,20}", fullmatch=True),
        "devices": json_values | st.lists(hs.names, max_size=3),
        "labels": json_values | st.dictionaries(hs.names, hs.names, max_size=3),
        "min_severity": json_values | st.sampled_from(["info", "warning", "critical"]),
        "kinds": json_values | st.lists(st.sampled_from(["alert", "insight"]), max_size=2),
        "batch": json_values,
    },
)
frames = st.one_of(
    subscribes.map(lambda f: ("json", f)),
    st.text(max_size=200).map(lambda t: ("text", t)),
    json_values.map(lambda v: ("text", json.dumps(v))),
    st.binary(max_size=200).map(lambda b: ("binary", b)),
    st.sampled_from([WS_LIMIT + 1, 200_000]).map(lambda n: ("huge", n)),
    st.just(("text", '{"type": "ping"}')),
)


async def send(
    ws: aiohttp.ClientWebSocketResponse, frame: tuple[str, Any], services: Suite
) -> None:
    kind, value = frame
    if kind == "json":
        value = dict(value)
        if isinstance(value.get("token"), str) and value["token"] in tokens(services):
            value["token"] = tokens(services)[value["token"]]
        await ws.send_str(json.dumps(value))
    elif kind == "text":
        await ws.send_str(value)
    elif kind == "binary":
        await ws.send_bytes(value)
    else:
        await ws.send_str('{"type":"ping","pad":"' + "x" * value + '"}')


async def next_frame(ws: aiohttp.ClientWebSocketResponse) -> aiohttp.WSMessage:
    """The next message that is not an event (other cases may publish events)."""
    while True:
        message = await ws.receive(timeout=TIMEOUT_S)
        if message.type != aiohttp.WSMsgType.TEXT:
            return message
        if json.loads(message.data).get("type") not in ("event", "events", "reset"):
            return message


def error_names_field(message: aiohttp.WSMessage) -> bool:
    """An error frame: `invalid_argument` with "<field>: <problem>", or
    `unauthenticated` saying what is wrong with the token."""
    frame = json.loads(message.data)
    text = str(frame.get("message", ""))
    if frame.get("type") != "error":
        return False
    if frame.get("code") == "unauthenticated":
        return "token" in text
    field, sep, problem = text.partition(": ")
    return frame.get("code") == "invalid_argument" and bool(field and sep and problem)


async def expect_closed(ws: aiohttp.ClientWebSocketResponse, codes: set[int]) -> None:
    message = await next_frame(ws)
    assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED), message
    assert ws.close_code in codes, ws.close_code


async def assert_ws_serves(session: aiohttp.ClientSession, services: Suite) -> None:
    async with session.ws_connect(services.ws) as ws:
        await ws.send_str(json.dumps({"type": "subscribe", "token": services.token}))
        assert json.loads((await next_frame(ws)).data) == {"type": "subscribed"}
        await ws.send_str('{"type": "ping"}')
        assert json.loads((await next_frame(ws)).data) == {"type": "pong"}


@cases(NETWORK)
@given(first=frames, rest=st.lists(frames, max_size=3))
async def test_any_websocket_frames_get_an_answer_or_a_documented_close(
    services: Suite, session: aiohttp.ClientSession, first: Any, rest: list[Any]
) -> None:
    ran("WebSocket frames")
    before = unexpected_errors()
    async with session.ws_connect(services.ws, max_msg_size=0) as ws:
        await send(ws, first, services)
        answer = await next_frame(ws)
        if first[0] == "huge":
            assert ws.close_code == 1009 or answer.type == aiohttp.WSMsgType.CLOSE
        elif answer.type != aiohttp.WSMsgType.TEXT:
            raise AssertionError(f"no answer to the first frame: {answer}")
        elif json.loads(answer.data) == {"type": "subscribed"}:
            for frame in rest:
                await send(ws, frame, services)
                reply = await next_frame(ws)
                if frame[0] == "huge":
                    assert ws.close_code == 1009, (reply, ws.close_code)
                    break
                assert reply.type == aiohttp.WSMsgType.TEXT, reply
                assert json.loads(reply.data) == {"type": "pong"} or error_names_field(reply)
        else:
            assert error_names_field(answer), answer.data
            unauthenticated = json.loads(answer.data)["code"] == "unauthenticated"
            await expect_closed(ws, {4401} if unauthenticated else {4400})
    await assert_ws_serves(session, services)
    assert unexpected_errors() == before


ROUTES = [
    "/api/alerts",
    "/api/alerts/{x}/ack",
    f"/api/alerts/{ALERT_ID}/ack",
    "/api/devices",
    "/api/devices/{x}/history",
    "/api/stats",
    "/api/analysis",
    "/api/analysis/{x}",
    "/api/{x}",
    "/",
    "/healthz",
    "/readyz",
    "/static/{x}",
    "/{x}",
]
QUERY_KEYS = ["state", "device", "min_severity", "limit", "window", "points", "x"]
segments = st.one_of(
    hs.names.map(lambda s: quote(s, safe="")),
    st.sampled_from(["..", "%2e%2e", "%00", "%ff", "a%2Fb", "app.js", "index.html"]),
)
queries = st.lists(
    st.tuples(st.sampled_from(QUERY_KEYS) | hs.names, hs.names | st.integers().map(str)),
    max_size=4,
)
bodies = st.one_of(
    st.none(),
    st.binary(max_size=300),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries(
        {},
        optional={
            "note": json_values | st.text(max_size=1100),
            "false_alarm": json_values,
            "device_id": json_values | st.sampled_from(["fuzz-dev", "press-1"]),
            "window": json_values | st.sampled_from(["1h", "90s", "0", "8d"]),
            "priority": json_values | st.sampled_from(["info", "critical"]),
        },
    ).map(lambda d: json.dumps(d).encode()),
    st.just(b"x" * 70_000),  # over the 64 KiB body limit
)
latin1 = st.text(st.characters(max_codepoint=255, exclude_categories=["Cc"]), max_size=80)


requests = st.fixed_dictionaries(
    {
        "method": st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "GET", "POST"]),
        "route": st.sampled_from(ROUTES),
        "segment": segments,
        "query": queries,
        "body": bodies,
        "auth": st.sampled_from(
            ["valid", "valid", "expired", "forged", "device", "none", "garbage"]
        ),
        "garbage": latin1,
        "content_type": st.sampled_from(["application/json", "text/plain", "", "application/x"]),
    }
)


@cases(NETWORK)
@given(request=requests)
async def test_any_http_request_is_answered_below_500_and_refusals_are_problems(
    services: Suite, session: aiohttp.ClientSession, request: dict[str, Any]
) -> None:
    ran("HTTP API and pages")
    before = unexpected_errors()
    method, auth, body = request["method"], request["auth"], request["body"]
    path = request["route"].replace("{x}", request["segment"])
    query, content_type = request["query"], request["content_type"]
    query_text = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in query)
    url = URL(f"{services.http}{path}" + (f"?{query_text}" if query_text else ""), encoded=True)
    token = tokens(services).get(auth)
    headers = {"Content-Type": content_type} if content_type else {}
    if auth == "garbage":
        headers["Authorization"] = request["garbage"]
    elif token is not None:
        headers["Authorization"] = f"Bearer {token}"
    async with session.request(method, url, data=body, headers=headers) as response:
        status = response.status
        text = await response.text(errors="replace")
        kind = response.content_type
    assert status < 500, (status, method, path, text[:300])
    if status == 400 and len(str(url)) > 8190:
        # aiohttp's HTTP parser refuses a request line over 8190 bytes itself, in plain
        # text, before any route or middleware sees the request.
        assert "Got more than 8190 bytes" in text
    elif status >= 400:
        assert kind == "application/problem+json", (status, kind, text[:200])
        problem = json.loads(text)
        assert problem["status"] == status and isinstance(problem["detail"], str)
        assert problem["detail"], problem
        if status == 401:
            assert path.startswith("/api/") and auth != "valid"
    elif path.startswith("/api/"):
        assert auth == "valid" and isinstance(json.loads(text), dict)
    async with session.get(
        f"{services.http}/api/stats", headers={"Authorization": f"Bearer {services.token}"}
    ) as canary:
        assert canary.status == 200
    assert unexpected_errors() == before
