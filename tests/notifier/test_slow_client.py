"""Isolation: a client that never reads is cut off while fifty others keep receiving
within the latency they had before it came, measured in the same test."""

from __future__ import annotations

import asyncio
import statistics
import time
from contextlib import AsyncExitStack

from prometheus_client import REGISTRY
from redis.asyncio import Redis

from services.common.events import publish
from tests.notifier.conftest import NeverReadingClient, alert, notifier_at
from tests.support.clients import WsClient, ws_client

CLIENTS = 50
ROUNDS = 150
PAD = "x" * 2000  # big events fill the stuck client's buffers in fewer rounds


def cut_offs() -> float:
    return REGISTRY.get_sample_value("vigil_notifier_slow_clients_total") or 0.0


class Fleet:
    """Fifty real clients; one round = publish one event, await it at every client."""

    def __init__(self, redis: Redis, clients: list[WsClient]) -> None:
        self.redis = redis
        self.clients = clients
        self.arrived: dict[int, list[float]] = {}
        self.complete: dict[int, asyncio.Event] = {}
        self.readers = [asyncio.create_task(self._read(c)) for c in clients]

    async def _read(self, client: WsClient) -> None:
        while True:
            _, event = await client.event(timeout_s=30)
            now = time.perf_counter()
            times = self.arrived.setdefault(event["n"], [])
            times.append(now)
            if len(times) == len(self.clients):
                self.complete[event["n"]].set()

    async def round(self, n: int) -> list[float]:
        self.complete[n] = asyncio.Event()
        sent = time.perf_counter()
        await publish(self.redis, alert("dev-1", n=n, reasons=[PAD]))
        await asyncio.wait_for(self.complete[n].wait(), 30)
        return [t - sent for t in self.arrived.pop(n)]

    async def stop(self) -> None:
        for reader in self.readers:
            reader.cancel()
        await asyncio.gather(*self.readers, return_exceptions=True)


def quantile(samples: list[float], q: float) -> float:
    return statistics.quantiles(samples, n=100)[int(q * 100) - 1]


async def test_never_reading_client_is_cut_off_and_the_others_latency_does_not_move(
    base_env: dict[str, str], token: str, redis: Redis
) -> None:
    async with (
        notifier_at({**base_env, "VIGIL_WS_QUEUE": "100"}) as notifier,
        AsyncExitStack() as stack,
    ):
        clients = [
            await stack.enter_async_context(ws_client(notifier.ws, token)) for _ in range(CLIENTS)
        ]
        fleet = Fleet(redis, clients)
        n = 0
        baseline: list[float] = []
        for _ in range(ROUNDS):
            baseline += await fleet.round(n)
            n += 1

        before = cut_offs()
        slow = await NeverReadingClient.connect(notifier.ws, {"type": "subscribe", "token": token})
        during: list[float] = []
        while cut_offs() == before:
            during += await fleet.round(n)
            n += 1
            assert n < 20_000, "the never-reading client was not cut off"
        rounds_to_cut = n - ROUNDS
        closed = await asyncio.wait_for(slow.closed_by_server(), 30)
        slow.close()
        after: list[float] = []
        for _ in range(ROUNDS):
            after += await fleet.round(n)
            n += 1
        await fleet.stop()

    assert closed
    assert cut_offs() == before + 1  # the stuck one, and none of the fifty
    # The fifty's latency while the stuck client was connected, against the same
    # fifty before it came and after it was gone (time-symmetric, same process).
    normal = baseline + after
    for q, bound in ((0.5, 1.5), (0.9, 2.0)):
        ratio = quantile(during, q) / quantile(normal, q)
        assert ratio <= bound, f"p{q * 100:.0f} moved x{ratio:.2f} ({rounds_to_cut} rounds to cut)"
