"""Clients the way users write them: the generated gRPC stubs and a WebSocket client."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import grpc
from grpc import aio
from vigil.v1 import common_pb2, ingest_pb2, ingest_pb2_grpc

from services.common.auth import device_token
from services.common.timeconv import from_seconds


def reading(sensor: str, value: float, at: float | None = None) -> common_pb2.Reading:
    return common_pb2.Reading(sensor=sensor, value=value, time=from_seconds(at or time.time()))


def hello(device_id: str, labels: dict[str, str] | None = None) -> ingest_pb2.DeviceMessage:
    return ingest_pb2.DeviceMessage(hello=ingest_pb2.Hello(device_id=device_id, labels=labels))


def batch(seq: int, readings: Sequence[common_pb2.Reading]) -> ingest_pb2.DeviceMessage:
    return ingest_pb2.DeviceMessage(batch=ingest_pb2.ReadingBatch(seq=seq, readings=readings))


class DeviceStream:
    """A raw generated-stub stream: write messages, read replies, see the status."""

    def __init__(self, call: aio.StreamStreamCall) -> None:
        self.call = call

    async def hello(self, device_id: str, labels: dict[str, str] | None = None) -> ingest_pb2.Flow:
        await self.call.write(hello(device_id, labels))
        reply = await asyncio.wait_for(self.call.read(), 10)
        assert reply.WhichOneof("kind") == "flow", reply
        return reply.flow

    async def send(self, seq: int, readings: Sequence[common_pb2.Reading]) -> ingest_pb2.Ack:
        await self.call.write(batch(seq, readings))
        reply = await asyncio.wait_for(self.call.read(), 10)
        assert reply is not aio.EOF and reply.WhichOneof("kind") == "ack", reply
        return reply.ack


def run_stream(
    target: str,
    token: str | None,
    messages: Sequence[Any],
    raw: bool = False,
    timeout_s: float = 10.0,
) -> tuple[grpc.StatusCode, str, list[int]]:
    """Send every message (bytes when `raw`), read to the end: the stream's status, its
    details and the seqs acked.

    The synchronous client: the asyncio client, when the server ends a stream while one
    of its writes is in flight (a refusal before Hello is read, say), records its own
    INTERNAL ("Internal error from Core", grpc/grpc#36066) in place of the server's
    status, and the server's answer is what a test asks about.
    """
    metadata = (("authorization", f"Bearer {token}"),) if token is not None else ()
    with grpc.insecure_channel(target) as channel:
        if raw:
            method = channel.stream_stream(
                "/vigil.v1.Ingest/Stream",
                request_serializer=None,
                response_deserializer=ingest_pb2.ServerMessage.FromString,
            )
        else:
            method = ingest_pb2_grpc.IngestStub(channel).Stream
        call = method(iter(messages), metadata=metadata, timeout=timeout_s)
        acked: list[int] = []
        try:
            for reply in call:
                if reply.WhichOneof("kind") == "ack":
                    acked.append(reply.ack.seq)
        except grpc.RpcError:
            pass  # the status is read below
        return call.code(), call.details() or "", acked


async def stream_status(
    target: str,
    token: str | None,
    messages: Sequence[Any],
    raw: bool = False,
    timeout_s: float = 10.0,
) -> tuple[grpc.StatusCode, str, list[int]]:
    """`run_stream` in a thread."""
    return await asyncio.to_thread(run_stream, target, token, messages, raw, timeout_s)


@asynccontextmanager
async def device_stream(
    target: str, token: str | None, channel: aio.Channel | None = None
) -> AsyncIterator[DeviceStream]:
    own = channel is None
    channel = channel or aio.insecure_channel(target)
    metadata = (("authorization", f"Bearer {token}"),) if token is not None else ()
    call = ingest_pb2_grpc.IngestStub(channel).Stream(metadata=metadata)
    try:
        yield DeviceStream(call)
    finally:
        call.cancel()
        if own:
            await channel.close()


def token_for(secret: str, device_id: str) -> str:
    return device_token(secret, device_id)


class WsClient:
    """A dashboard WebSocket client that collects frames as they arrive."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws

    async def send(self, frame: dict[str, Any]) -> None:
        await self.ws.send_str(json.dumps(frame))

    async def frame(self, timeout_s: float = 10.0) -> dict[str, Any]:
        message = await self.ws.receive(timeout=timeout_s)
        assert message.type == aiohttp.WSMsgType.TEXT, message
        frame: dict[str, Any] = json.loads(message.data)
        return frame

    async def event(self, timeout_s: float = 10.0, **match: Any) -> tuple[str, dict[str, Any]]:
        """The next event frame whose event has all of `match`'s items."""
        deadline = time.monotonic() + timeout_s
        while True:
            frame = await self.frame(max(0.01, deadline - time.monotonic()))
            if frame["type"] != "event":
                continue
            event = frame["event"]
            if all(event.get(k) == v for k, v in match.items()):
                return frame["id"], event


@asynccontextmanager
async def ws_client(
    url: str, token: str, last_id: str | None = None, **subscribe: Any
) -> AsyncIterator[WsClient]:
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        client = WsClient(ws)
        await client.send({"type": "subscribe", "token": token, "last_id": last_id, **subscribe})
        first = await client.frame()
        assert first == {"type": "subscribed"}, first
        yield client
