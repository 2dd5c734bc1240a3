"""A lowered window and the batches already on their way: a device that wrote within
the window it had, before the lowered one reached it, is throttled but never struck
(and so never cut off). Found under network faults, where windows drop quickly while
batches are in transit; here the link to the detector is slowed so they pile up."""

from __future__ import annotations

import grpc
from grpc import aio
from redis.asyncio import Redis

from services.ingest.server import IngestApp
from tests.ingest.test_limits import Counted
from tests.support.clients import batch, device_stream, reading, token_for
from tests.support.faultproxy import FaultProxy
from tests.support.services import running


async def test_batches_written_under_the_old_window_are_not_strikes(
    base_env: dict[str, str], device_secret: str, redis: Redis
) -> None:
    refused = Counted("vigil_ingest_limit_total", limit="window", action="refused")
    async with running("detector", base_env) as detector:
        slow_link = FaultProxy("127.0.0.1", detector.grpc_port, "ingest->detector")
        await slow_link.start()
        slow_link.delay(0.05)  # batches stay unacknowledged a while: they pile up
        env = {
            **base_env,
            "VIGIL_DETECTOR_ADDRS": slow_link.address,
            "VIGIL_MAX_IN_FLIGHT": "8",
            "VIGIL_WINDOW_STRIKES": "1",
        }
        try:
            async with (
                running("ingest", env) as service,
                device_stream(
                    f"127.0.0.1:{service.grpc_port}", token_for(device_secret, "fair")
                ) as dev,
            ):
                assert isinstance(service.app, IngestApp)
                flow = service.app.parts.flow
                assert (await dev.hello("fair")).max_in_flight == 8
                # The stages fall behind: the window drops to 1. The Flow messages are
                # on their way, and the device writes 8 batches, as its window of 8
                # allows, before it reads them.
                flow.observe(10.0)
                for window in (4, 2, 1):
                    flow._changed_at = -1e9  # no rate limit on these changes
                    assert flow.decide() == window
                for seq in range(1, 9):
                    await dev.call.write(batch(seq, [reading("t", 1.0)]))
                acked: set[int] = set()
                windows: list[int] = []
                while len(acked) < 8:
                    message = await dev.call.read()
                    assert message is not aio.EOF, await dev.call.details()
                    if message.WhichOneof("kind") == "ack":
                        acked.add(message.ack.seq)
                    else:
                        windows.append(message.flow.max_in_flight)
                assert windows[:3] == [4, 2, 1]
                # Now it obeys the window of 1, and the stream carries on.
                await dev.send(9, [reading("t", 2.0)])
                await dev.call.done_writing()
                assert await dev.call.code() == grpc.StatusCode.OK
        finally:
            await slow_link.stop()
    assert acked == set(range(1, 9))
    assert refused.delta == 0
