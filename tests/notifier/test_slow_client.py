"""Isolation: a client that never reads is cut off while fifty others keep receiving
every event, in order, while it is connected and stuck; and it is found after a bounded
number of events, whatever the kernel's socket buffer autotuning would allow.

How much the stuck client moves the others' latency is a performance figure: `make
bench` measures it (fanout stage, 10% slow clients, target p99 ratio <= 1.2), not this
test, whose timing would depend on what else the machine runs."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack

from prometheus_client import REGISTRY
from redis.asyncio import Redis

from services.common.events import publish
from tests.notifier.conftest import NeverReadingClient, alert, notifier_at
from tests.support.clients import WsClient, ws_client

CLIENTS = 50
ROUNDS = 50
PAD = "x" * 2000  # big events fill the stuck client's buffers in fewer rounds
QUEUE = 100
SEND_BUFFER = 65_536
#: What the stuck client holds before it is cut off: the kernel's send buffer (Linux
#: books twice SO_SNDBUF), what the notifier has written ahead (64 KiB direct, then
#: aiohttp's buffer), its own 4 KiB receive buffer, then QUEUE events in its mailbox.
#: Measured here: 284 rounds at this SEND_BUFFER, 403 at the default 256 KiB, 1,436
#: with the kernel's autotuning (0; tcp_wmem up to 4 MiB), which this bound refuses.
MOST_ROUNDS_STUCK = 600


def cut_offs() -> float:
    return REGISTRY.get_sample_value("vigil_notifier_slow_clients_total") or 0.0


class Fleet:
    """Fifty real clients; one round = publish one event, await it at every client."""

    def __init__(self, redis: Redis, clients: list[WsClient]) -> None:
        self.redis = redis
        self.clients = clients
        self.arrived: dict[int, int] = {}  # event n -> clients that have it
        self.complete: dict[int, asyncio.Event] = {}
        self.seen: list[list[int]] = [[] for _ in clients]
        self.readers = [asyncio.create_task(self._read(c, i)) for i, c in enumerate(clients)]

    async def _read(self, client: WsClient, index: int) -> None:
        while True:
            _, event = await client.event(timeout_s=30)
            self.seen[index].append(event["n"])
            self.arrived[event["n"]] = self.arrived.get(event["n"], 0) + 1
            if self.arrived[event["n"]] == len(self.clients):
                self.complete[event["n"]].set()

    async def round(self, n: int) -> None:
        self.complete[n] = asyncio.Event()
        await publish(self.redis, alert("dev-1", n=n, reasons=[PAD]))
        await asyncio.wait_for(self.complete[n].wait(), 30)
        self.arrived.pop(n)

    async def stop(self) -> None:
        for reader in self.readers:
            reader.cancel()
        await asyncio.gather(*self.readers, return_exceptions=True)


async def test_never_reading_client_is_cut_off_and_the_others_miss_nothing(
    base_env: dict[str, str], token: str, redis: Redis
) -> None:
    async with (
        notifier_at(
            {
                **base_env,
                "VIGIL_WS_QUEUE": str(QUEUE),
                "VIGIL_WS_SEND_BUFFER_BYTES": str(SEND_BUFFER),
            }
        ) as notifier,
        AsyncExitStack() as stack,
    ):
        clients = [
            await stack.enter_async_context(ws_client(notifier.ws, token)) for _ in range(CLIENTS)
        ]
        fleet = Fleet(redis, clients)
        n = 0
        for _ in range(ROUNDS):
            await fleet.round(n)
            n += 1

        before = cut_offs()
        slow = await NeverReadingClient.connect(notifier.ws, {"type": "subscribe", "token": token})
        # Every round below completes only when all fifty have the event: a notifier
        # that waited on the stuck client would time out here instead.
        while cut_offs() == before:
            await fleet.round(n)
            n += 1
            assert n - ROUNDS <= MOST_ROUNDS_STUCK, "the never-reading client was not cut off"
        rounds_while_stuck = n - ROUNDS
        closed = await asyncio.wait_for(slow.closed_by_server(), 30)
        slow.close()
        for _ in range(ROUNDS):
            await fleet.round(n)
            n += 1
        await fleet.stop()

    assert closed
    assert cut_offs() == before + 1  # the stuck one, and none of the fifty
    # The stuck client's buffers took several rounds to fill: the fifty were served
    # all that time, each event once and in order.
    assert rounds_while_stuck > 1
    assert all(seen == list(range(n)) for seen in fleet.seen)
