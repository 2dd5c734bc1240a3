"""The /ws endpoint on a real notifier with a real Redis and real WebSocket clients."""

from __future__ import annotations

import asyncio
import hmac
from typing import Any

import aiohttp
import pytest
from redis.asyncio import Redis

from services.common.events import publish, stream_fields
from tests.notifier.conftest import Notifier, alert, insight, notifier_at
from tests.support.clients import WsClient, ws_client


async def raw_first_frame(url: str, frame: Any, **headers: str) -> tuple[Any, int | None]:
    async with aiohttp.ClientSession() as session, session.ws_connect(url, headers=headers) as ws:
        if isinstance(frame, bytes):
            await ws.send_bytes(frame)
        else:
            await ws.send_str(frame)
        reply = await ws.receive(timeout=10)
        closing = await ws.receive(timeout=10)
        return (
            reply.json() if reply.type == aiohttp.WSMsgType.TEXT else reply,
            ws.close_code or closing.data,
        )


async def test_live_event_reaches_subscriber(notifier: Notifier, token: str, redis: Redis) -> None:
    async with ws_client(notifier.ws, token) as client:
        entry_id = await publish(redis, alert("dev-1"))
        got_id, event = await client.event()
    assert got_id == entry_id and event == alert("dev-1")


async def test_resume_replays_exactly_what_was_missed(
    notifier: Notifier, token: str, redis: Redis
) -> None:
    ids = [await publish(redis, alert("dev-1", n=i)) for i in range(5)]
    async with ws_client(notifier.ws, token, last_id=ids[1]) as client:
        replayed = [await client.event() for _ in range(3)]
        live_id = await publish(redis, alert("dev-1", n=5))
        live = await client.event()
    assert [i for i, _ in replayed] == ids[2:]
    assert [e["n"] for _, e in replayed] == [2, 3, 4]
    assert live == (live_id, alert("dev-1", n=5))


async def test_filters_by_device_and_minimum_severity(
    notifier: Notifier, token: str, redis: Redis
) -> None:
    async with ws_client(notifier.ws, token, devices=["a"], min_severity="critical") as client:
        await publish(redis, alert("b", "critical"))
        await publish(redis, alert("a", "warning"))
        wanted = await publish(redis, alert("a", "critical"))
        got_id, _ = await client.event()
    assert got_id == wanted


async def test_label_selector_follows_the_device_to_events_without_labels(
    notifier: Notifier, token: str, redis: Redis
) -> None:
    """Insights carry no labels: the selector matches the labels the device's alert had."""
    north, south = {"site": "north", "line": "2"}, {"site": "south", "line": "2"}
    async with (
        ws_client(notifier.ws, token, labels={"site": "north"}) as client,
        ws_client(notifier.ws, token, kinds=["insight"]) as watcher,
    ):
        wanted = [await publish(redis, alert("a", labels=north, alert_id="ep-a"))]
        await publish(redis, alert("b", labels=south, alert_id="ep-b"))
        await publish(redis, insight("b", "ep-b"))
        wanted.append(await publish(redis, insight("a", "ep-a")))
        await publish(redis, alert("never-seen-labels"))
        last = await publish(redis, insight("never-seen-labels", "x"))
        assert (await watcher.event(device_id="never-seen-labels"))[0] == last
        got = [await client.event() for _ in range(2)]
        with pytest.raises(TimeoutError):
            await client.event(timeout_s=0.3)  # b and the unlabelled device stay out
    assert [entry_id for entry_id, _ in got] == wanted
    assert [event["kind"] for _, event in got] == ["alert", "insight"]


async def test_kinds_filter(notifier: Notifier, token: str, redis: Redis) -> None:
    async with ws_client(notifier.ws, token, kinds=["insight"]) as client:
        await publish(redis, alert("a", alert_id="ep-a"))
        wanted = await publish(redis, insight("a", "ep-a"))
        got_id, event = await client.event()
    assert (got_id, event["kind"]) == (wanted, "insight")


async def test_batch_mode_sends_events_published_together_in_one_frame(
    notifier: Notifier, token: str, redis: Redis
) -> None:
    async with ws_client(notifier.ws, token, batch=True) as client:
        # One MULTI: the hub's XREAD wakes once and finds all fifty.
        async with redis.pipeline(transaction=True) as pipe:
            for n in range(50):
                pipe.xadd("vigil:events", stream_fields(alert("a", n=n)))  # type: ignore[arg-type]
            ids = [str(i) for i in await pipe.execute()]
        frames: list[dict[str, Any]] = []
        got: list[str] = []
        while len(got) < 50:
            frame = await client.frame()
            frames.append(frame)
            items = frame["events"] if frame["type"] == "events" else [frame]
            got += [item["id"] for item in items]
    assert got == ids
    assert frames[0]["type"] == "events" and len(frames) < 50


async def test_too_old_last_id_gets_reset_with_current_alerts_then_live_events(
    notifier: Notifier, token: str, redis: Redis
) -> None:
    async with ws_client(notifier.ws, token) as watcher:
        await publish(redis, alert("dev-1", alert_id="ep-1"))
        explained = await publish(redis, insight("dev-1", "ep-1"))
        await watcher.event(kind="insight")  # the notifier has taken both in
    await redis.xtrim("vigil:events", maxlen=1)  # the alert itself is gone from the stream
    async with ws_client(notifier.ws, token, last_id="1-0") as client:
        reset = await client.frame()
        live = await publish(redis, alert("dev-2"))
        next_id, _ = await client.event()
    assert reset["type"] == "reset" and reset["id"] == explained
    [state] = reset["alerts"]
    assert (state["alert_id"], state["state"], state["open"]) == ("ep-1", "opened", True)
    assert state["insight"]["diagnosis"] == "diagnosis 0"
    assert next_id == live


async def publish_paced(
    redis: Redis, total: int, pauses: dict[int, asyncio.Event], into: list[str]
) -> None:
    """Publish `total` alerts; before number n in `pauses`, wait for that event."""
    for n in range(total):
        if n in pauses:
            await pauses[n].wait()
        into.append(await publish(redis, alert("dev-1", n=n)))


async def receive(client: WsClient, seen: list[str], until: int) -> None:
    while len(seen) < until:
        entry_id, _ = await client.event()
        seen.append(entry_id)


async def test_client_reconnect_misses_nothing_and_sees_nothing_twice(
    notifier: Notifier, token: str, redis: Redis
) -> None:
    total, gone, back = 600, asyncio.Event(), asyncio.Event()
    published: list[str] = []
    seen: list[str] = []
    async with ws_client(notifier.ws, token) as client:
        publisher = asyncio.create_task(
            publish_paced(redis, total, {200: gone, 400: back}, published)
        )
        await receive(client, seen, 100)
    gone.set()  # 200-399 are published while the client is away
    async with ws_client(notifier.ws, token, last_id=seen[-1]) as client:
        back.set()  # 400-599 arrive live
        await receive(client, seen, total)
        await publisher
        with pytest.raises(TimeoutError):
            await client.event(timeout_s=0.3)
    assert len(seen) == len(set(seen)) == total  # 0 duplicated
    assert seen == published  # 0 missed, in order


async def test_notifier_restart_misses_nothing_and_duplicates_nothing(
    base_env: dict[str, str], token: str, redis: Redis
) -> None:
    total, down, back = 600, asyncio.Event(), asyncio.Event()
    published: list[str] = []
    seen: list[str] = []
    async with notifier_at(base_env) as first, ws_client(first.ws, token) as client:
        publisher = asyncio.create_task(
            publish_paced(redis, total, {200: down, 400: back}, published)
        )
        await receive(client, seen, 100)
    down.set()  # the only notifier is gone: 200-399 are published meanwhile
    async with (
        notifier_at(base_env) as second,
        ws_client(second.ws, token, last_id=seen[-1]) as client,
    ):
        back.set()
        await receive(client, seen, total)
        await publisher
        with pytest.raises(TimeoutError):
            await client.event(timeout_s=0.3)
    assert len(seen) == len(set(seen)) == total
    assert seen == published


@pytest.mark.parametrize(
    ("frame", "code", "error"),
    [
        ('{"type": "subscribe", "token": "x.0.y"}', 4401, "unauthenticated"),
        ("not json", 4400, "invalid_argument"),
        ('{"type": "subscribe", "token": "t", "last_id": "yesterday"}', 4400, "invalid_argument"),
        ('{"type": "subscribe", "token": "t", "labels": ["site"]}', 4400, "invalid_argument"),
        ('{"type": "subscribe", "token": "t", "batch": "yes"}', 4400, "invalid_argument"),
        ('{"type": "hello"}', 4400, "invalid_argument"),
        ("[1, 2]", 4400, "invalid_argument"),
        (b"\x00\x01", 4400, "invalid_argument"),
    ],
    ids=["bad-token", "malformed", "bad-last-id", "bad-labels", "bad-batch", "wrong-type",
         "not-object", "binary"],
)  # fmt: skip
async def test_bad_first_frame_gets_error_then_close(
    notifier: Notifier, frame: Any, code: int, error: str
) -> None:
    reply, close_code = await raw_first_frame(notifier.ws, frame)
    assert reply["type"] == "error" and reply["code"] == error
    assert close_code == code


async def test_expired_token_is_refused(notifier: Notifier, dashboard_secret: str) -> None:
    # The documented format, expired in 1970.
    signature = hmac.new(bytes.fromhex(dashboard_secret), b"dashboard|old|1000", "sha256")
    expired = f"old.1000.{signature.hexdigest()}"
    reply, close_code = await raw_first_frame(
        notifier.ws, f'{{"type": "subscribe", "token": "{expired}"}}'
    )
    assert reply["message"] == "dashboard token expired" and close_code == 4401


async def test_oversized_frame_is_closed_with_1009_and_the_server_carries_on(
    notifier: Notifier, token: str, redis: Redis
) -> None:
    async with aiohttp.ClientSession() as session, session.ws_connect(notifier.ws) as ws:
        await ws.send_str("x" * 70_000)  # the limit is 65,536 bytes
        closing = await ws.receive(timeout=10)
    assert closing.type == aiohttp.WSMsgType.CLOSE and closing.data == 1009
    async with ws_client(notifier.ws, token) as client:
        await client.ws.send_str('{"type": "ping", "pad": "' + "y" * 70_000 + '"}')
        closing = await client.ws.receive(timeout=10)
        assert closing.data == 1009
    async with ws_client(notifier.ws, token) as client:
        entry_id = await publish(redis, alert("dev-1"))
        assert (await client.event())[0] == entry_id


async def test_foreign_origin_is_refused(notifier: Notifier) -> None:
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as failure:
            await session.ws_connect(notifier.ws, headers={"Origin": "https://evil.example"})
    assert failure.value.status == 403


async def test_listed_and_same_origins_are_allowed(
    base_env: dict[str, str], token: str, redis: Redis
) -> None:
    env = {**base_env, "VIGIL_ALLOWED_ORIGINS": "https://ops.example, https://noc.example"}
    async with notifier_at(env) as notifier:
        for origin in ("https://noc.example", notifier.http):
            async with (
                aiohttp.ClientSession() as session,
                session.ws_connect(notifier.ws, headers={"Origin": origin}) as ws,
            ):
                await ws.send_json({"type": "subscribe", "token": token})
                assert (await ws.receive_json(timeout=10)) == {"type": "subscribed"}


async def test_malformed_frame_after_subscribe_is_answered_not_fatal(
    notifier: Notifier, token: str, redis: Redis
) -> None:
    async with ws_client(notifier.ws, token) as client:
        await client.ws.send_str("{oops")
        assert (await client.frame())["type"] == "error"
        await client.ws.send_bytes(b"\xff")
        assert (await client.frame())["message"] == "frame: expected a text frame"
        await client.send({"type": "subscribe", "token": "again"})
        assert "unknown frame type" in (await client.frame())["message"]
        await client.send({"type": "ping"})
        assert await client.frame() == {"type": "pong"}
        entry_id = await publish(redis, alert("dev-1"))
        assert (await client.event())[0] == entry_id


async def test_peer_that_stops_answering_pings_is_closed(
    base_env: dict[str, str], token: str, redis: Redis
) -> None:
    async with (
        notifier_at({**base_env, "VIGIL_WS_HEARTBEAT_SECONDS": "0.3"}) as notifier,
        aiohttp.ClientSession() as session,
        session.ws_connect(notifier.ws, autoping=False) as ws,
    ):
        await ws.send_json({"type": "subscribe", "token": token})
        assert (await ws.receive_json(timeout=10)) == {"type": "subscribed"}
        # Alive while it answers: three server pings answered, an event still arrives.
        for _ in range(3):
            ping = await ws.receive(timeout=10)
            assert ping.type == aiohttp.WSMsgType.PING
            await ws.pong(ping.data)
        entry_id = await publish(redis, alert("dev-1"))
        while (message := await ws.receive(timeout=10)).type == aiohttp.WSMsgType.PING:
            await ws.pong(message.data)
        assert message.json()["id"] == entry_id
        # Then silence: the server gives up on it by itself (a timeout here would fail).
        while (message := await ws.receive(timeout=10)).type == aiohttp.WSMsgType.PING:
            pass
        assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)


async def test_client_that_falls_behind_is_closed_with_4408_and_resumes_without_loss(
    base_env: dict[str, str], token: str, redis: Redis
) -> None:
    async with notifier_at({**base_env, "VIGIL_WS_QUEUE": "5"}) as notifier:
        async with ws_client(notifier.ws, token) as client:
            seen = [await publish(redis, alert("a", n=-1))]
            assert (await client.event())[0] == seen[0]
            # Fifty at once, 200 kB, more than a socket is written directly: they queue,
            # into a mailbox of five, which overflows in one step.
            async with redis.pipeline(transaction=True) as pipe:
                for n in range(50):
                    big = alert("a", n=n, reasons=["x" * 4000])
                    pipe.xadd("vigil:events", stream_fields(big))  # type: ignore[arg-type]
                ids = seen + [str(i) for i in await pipe.execute()]
            while (message := await client.ws.receive(timeout=10)).type == aiohttp.WSMsgType.TEXT:
                seen.append(message.json()["id"])
            assert message.type == aiohttp.WSMsgType.CLOSE and message.data == 4408
            assert message.extra == "too slow: reconnect with last_id"
        async with ws_client(notifier.ws, token, last_id=seen[-1]) as client:
            while len(seen) < len(ids):
                seen.append((await client.event())[0])
    assert seen == ids


async def test_device_events_set_the_labels_a_selector_matches(
    notifier: Notifier, token: str, redis: Redis
) -> None:
    """A device that has raised no alert yet is selected by the labels it reported."""
    online = {"kind": "device", "device_id": "c", "labels": {"site": "north"},
              "status": "online", "severity": None, "time": "2026-11-25T12:00:00.000Z"}  # fmt: skip
    async with ws_client(notifier.ws, token, labels={"site": "north"}) as client:
        first = await publish(redis, online)
        second = await publish(redis, {**online, "status": "offline"})
        got = [(await client.event())[0] for _ in range(2)]
    assert got == [first, second]


async def test_malformed_stream_entries_are_skipped_and_nothing_else_breaks(
    notifier: Notifier, token: str, redis: Redis
) -> None:
    odd = {"kind": "alert", "alert_id": {"not": "a string"}, "device_id": "d", "labels": "x",
           "reasons": 5, "severity": ["warning"], "state": None}  # fmt: skip
    async with ws_client(notifier.ws, token) as client:
        await redis.xadd("vigil:events", {"kind": "alert", "device": "d", "sev": "2",
                                          "data": "{broken"})  # fmt: skip
        await redis.xadd("vigil:events", {"kind": "alert", "device": "d", "sev": "x",
                                          "data": "{}"})  # fmt: skip
        await redis.xadd("vigil:events", {"kind": "alert", "device": "d", "data": "[1]"})
        odd_id = await publish(redis, odd)
        good_id = await publish(redis, alert("d", alert_id="ep-good"))
        got = [(await client.event())[0] for _ in range(2)]
    assert got == [odd_id, good_id]  # the three that are not events never reach anyone
    async with aiohttp.ClientSession(notifier.http) as session:
        headers = {"Authorization": f"Bearer {token}"}
        async with session.get("/api/alerts", headers=headers) as response:
            alerts = (await response.json())["alerts"]
    assert "ep-good" in [a["alert_id"] for a in alerts]
