"""A window lowered while a device's batches are on their way is no strike against it.

Until the device reads the new Flow it may fill the window it knew; only what it
sends after that must fit the new one. Ingest used to enforce a lowered window at once,
so after any stall (Redis away, the detector restarting) the Flow controller's halving
cut well-behaved devices off with RESOURCE_EXHAUSTED.
"""

from __future__ import annotations

import grpc
from grpc import aio
from redis.asyncio import Redis

from services.ingest.server import IngestApp
from tests.ingest.test_limits import Counted, final_status, ingest
from tests.support.clients import batch, device_stream, reading, token_for

OLD_WINDOW = 8


async def test_batches_sent_under_the_old_window_are_read_without_a_strike(
    base_env: dict[str, str], device_secret: str, redis: Redis
) -> None:
    throttled = Counted("vigil_ingest_limit_total", limit="window", action="throttled")
    env = {"VIGIL_MAX_IN_FLIGHT": str(OLD_WINDOW), "VIGIL_WINDOW_STRIKES": "0"}
    async with (
        ingest(base_env, **env) as (target, service),
        device_stream(target, token_for(device_secret, "busy")) as dev,
    ):
        assert isinstance(service.app, IngestApp)
        flow = service.app.parts.flow
        assert (await dev.hello("busy")).max_in_flight == OLD_WINDOW
        flow.observe(10.0)  # the stages behind ingest are far behind: 8 -> 4 -> 2 -> 1
        while flow.window > 1:
            flow._changed_at = -1e9  # no rate limit on the changes
            flow.decide()
        # The device has not read those Flow messages yet: it fills the window it knows.
        for seq in range(1, OLD_WINDOW + 1):
            await dev.call.write(batch(seq, [reading("t", 1.0)]))
        acked: set[int] = set()
        flows: list[int] = []
        while len(acked) < OLD_WINDOW:
            reply = await dev.call.read()
            assert reply is not aio.EOF, await final_status(dev.call)
            if reply.WhichOneof("kind") == "ack":
                acked.add(reply.ack.seq)
            else:
                flows.append(reply.flow.max_in_flight)
        assert flows == [4, 2, 1]
        # It has read them now: past the window it was told, it is cut off (0 strikes).
        for seq in (OLD_WINDOW + 1, OLD_WINDOW + 2):
            try:
                await dev.call.write(batch(seq, [reading("t", 1.0)]))
            except (aio.AioRpcError, aio.UsageError, grpc.RpcError):
                break  # the server already ended the stream
        code, details = await final_status(dev.call)
    assert acked == set(range(1, OLD_WINDOW + 1))
    assert throttled.delta == 0
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert details.startswith("more than 1 unacknowledged batches in flight"), details
