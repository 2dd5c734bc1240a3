"""A stream closed while suspended at a write says goodbye before it counts as ended.

grpc.aio does not close a streaming handler's generator when a write is cancelled (the
device went away, the server stops): the generator is left at its `yield` and closed
later by garbage collection, in a task of its own. The session's generator inside it
used to be closed later still, in yet another task, after `drain` had seen the stream
end and gone on to close Redis: the device kept its "online" record (once seen after a
Ctrl-C of `vigil up`). Closing the servicer's generator, as garbage collection does,
must run the session's clean-up and goodbye before the stream counts as ended.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from redis.asyncio import Redis
from vigil.v1 import ingest_pb2

from services.common import keys
from services.ingest.server import IngestApp
from tests.support.clients import token_for
from tests.support.services import running


class HandlerContext:
    """The part of grpc's ServicerContext a session uses before its first batch."""

    def __init__(self, token: str) -> None:
        self.metadata = (("authorization", f"Bearer {token}"),)

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return self.metadata

    async def abort(self, code: Any, details: str) -> None:
        raise AssertionError(f"aborted: {code} {details}")


async def status(redis: Redis, device_id: str) -> str:
    record = json.loads(await redis.hget(keys.DEVICES, device_id) or "{}")
    return str(record.get("status", ""))


async def test_a_stream_closed_at_its_yield_says_goodbye_before_it_counts_as_ended(
    base_env: dict[str, str], device_secret: str, redis: Redis
) -> None:
    held = asyncio.Event()

    async def requests() -> AsyncIterator[ingest_pb2.DeviceMessage]:
        yield ingest_pb2.DeviceMessage(hello=ingest_pb2.Hello(device_id="d-1"))
        await held.wait()  # a device that says nothing more

    async with running("ingest", base_env) as service:
        assert isinstance(service.app, IngestApp)
        servicer = service.app.servicer
        stream = servicer.Stream(requests(), HandlerContext(token_for(device_secret, "d-1")))
        first = await anext(stream)  # the first Flow; the handler now waits at its yield
        assert first.HasField("flow")
        assert await status(redis, "d-1") == "online"
        await stream.aclose()  # what garbage collection does after a cancelled write
        assert not servicer.sessions
        assert await status(redis, "d-1") == "offline"
