"""Notifier fan-out: latency from an event's publication to its arrival at each of N
loopback WebSocket clients, and what 10% slow clients do to everybody else's.

One notifier process (`vigil serve notifier`, default settings) on a private Redis;
this process publishes events to `vigil:events` at a fixed rate, each carrying its
publication time, and hosts the clients: raw asyncio protocols that frame and parse
only what they need, so 1,000 of them cost the harness little and the figure is the
notifier's (both processes' CPU is reported to check that). Latency is taken over
every (event, client) pair after a warm-up; an event any client misses is counted.

Slow clients have a 4 KiB receive buffer and read a little every half second. On
loopback the kernel would absorb such a reader for megabytes, so before the
measurement they are sent 4 MB of padding while not reading at all: from then on
the notifier's own slow path (bounded mailbox, sender task) holds their backlog, as
on a real slow link. The others' p99 is compared with the same clients' p99 in a run
where the 10% read normally.

    python -m bench.fanout --clients 1000 --rate 20 --seconds 10 [--slow 0.1]

Bounded: at most 5,000 clients, 1,000 events/s and 120 s, on 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import re
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from redis.asyncio import Redis

from bench.procs import Service, cluster, cpu_seconds
from bench.report import Figure, Target
from bench.size import Size
from bench.stats import percentile
from services.common.auth import dashboard_token
from services.common.events import publish
from services.common.redis_client import connect

STAGE = "fanout"
SENT = re.compile(rb'"sent":([0-9.]+),"n":(\d+)')
SLOW_RCVBUF = 4096
SLOW_READ_EVERY_S = 0.5
PAD = "x" * 2000
PREFILL_EVENTS = 2000  # 4 MB per slow client: past what loopback's kernel buffers hold


@dataclass
class Tally:
    """Shared by the clients of one run: how many have seen every event."""

    clients: int
    expected: int = 0
    subscribed: int = 0
    complete: int = 0
    all_subscribed: asyncio.Event = field(default_factory=asyncio.Event)
    all_complete: asyncio.Event = field(default_factory=asyncio.Event)
    waiting: list[tuple[int, asyncio.Future[None]]] = field(default_factory=list)

    async def subscribed_at_least(self, count: int) -> None:
        if self.subscribed < count:
            future = asyncio.get_running_loop().create_future()
            self.waiting.append((count, future))
            await future


class Client(asyncio.Protocol):
    """A minimal WebSocket client on a raw asyncio protocol."""

    def __init__(self, subscribe: bytes, tally: Tally, counted: bool) -> None:
        self.subscribe = subscribe
        self.tally = tally
        self.counted = counted  # slow clients do not hold up the end of a run
        self.buffer = b""
        self.upgraded = False
        self.latencies: list[float] = []
        self.seen: set[int] = set()
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True

    def data_received(self, data: bytes) -> None:
        now = time.time()
        self.buffer += data
        if not self.upgraded:
            head, sep, rest = self.buffer.partition(b"\r\n\r\n")
            if not sep:
                return
            if not head.startswith(b"HTTP/1.1 101"):
                raise RuntimeError(f"no WebSocket upgrade: {head[:80]!r}")
            self.upgraded, self.buffer = True, rest
            self.transport.write(self.subscribe)
        while len(self.buffer) >= 2:
            size, start = self.buffer[1] & 0x7F, 2
            if size == 126:
                size, start = int.from_bytes(self.buffer[2:4], "big"), 4
            elif size == 127:
                size, start = int.from_bytes(self.buffer[2:10], "big"), 10
            if len(self.buffer) < start + size:
                return
            payload, self.buffer = self.buffer[start : start + size], self.buffer[start + size :]
            if payload == b'{"type":"subscribed"}':
                self.subscribed()
                continue
            for sent, n in SENT.findall(payload):
                self.latencies.append(now - float(sent))
                self.seen.add(int(n))
                if self.counted and len(self.seen) == self.tally.expected:
                    self.tally.complete += 1
                    if self.tally.complete == self.tally.clients:
                        self.tally.all_complete.set()

    def subscribed(self) -> None:
        tally = self.tally
        tally.subscribed += 1
        for count, future in tally.waiting:
            if tally.subscribed >= count and not future.done():
                future.set_result(None)
        if tally.subscribed == tally.clients:
            tally.all_subscribed.set()


class SlowClient(Client):
    """Subscribes, then reads nothing until `start_reading`; after that, one chunk of
    its 4 KiB receive buffer every SLOW_READ_EVERY_S."""

    def subscribed(self) -> None:
        super().subscribed()
        self.transport.pause_reading()

    def start_reading(self) -> None:
        loop = asyncio.get_running_loop()

        def tick() -> None:
            if self.closed:
                return
            self.transport.resume_reading()
            loop.call_soon(self.transport.pause_reading)  # after one read
            loop.call_later(SLOW_READ_EVERY_S, tick)

        tick()


def masked_text(payload: bytes) -> bytes:
    mask = os.urandom(4)
    size = len(payload)
    header = (
        bytes((0x81, 0x80 | size)) if size < 126 else bytes((0x81, 0xFE)) + size.to_bytes(2, "big")
    )
    return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


async def open_client(port: int, client: Client, small_buffer: bool) -> Client:
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if small_buffer:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SLOW_RCVBUF)
    sock.setblocking(False)
    await loop.sock_connect(sock, ("127.0.0.1", port))
    await loop.create_connection(lambda: client, sock=sock)
    key = base64.b64encode(os.urandom(16)).decode()
    client.transport.write(
        f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    return client


@dataclass
class Run:
    clients: int
    slow: int
    rate: float
    seconds: float
    warmup: float = 1.0


@dataclass
class Outcome:
    latencies: list[list[float]]  # per normal client, after the warm-up
    missed: int
    deliveries_per_s: float
    notifier_cpu: float
    clients_cpu: float
    slow_cut_off: int


async def _connect_all(port: int, clients: list[tuple[Client, bool]], tally: Tally) -> None:
    # A few handshakes at a time, each lot subscribed before the next: connects beyond
    # what the server has accepted overflow its listen backlog and wait for SYN retries.
    for start in range(0, len(clients), 50):
        lot = clients[start : start + 50]
        await asyncio.gather(*(open_client(port, c, s) for c, s in lot))
        await asyncio.wait_for(tally.subscribed_at_least(start + len(lot)), 30)
    await asyncio.wait_for(tally.all_subscribed.wait(), 30)


async def measure(notifier: Service, token: str, redis: Redis, run: Run) -> Outcome:
    port = notifier.ports["http_port"]
    subscribe = masked_text(json.dumps({"type": "subscribe", "token": token}).encode())
    slow_tally = Tally(run.slow)
    slow = [SlowClient(subscribe, slow_tally, counted=False) for _ in range(run.slow)]
    normal_tally = Tally(run.clients - run.slow)
    normal = [Client(subscribe, normal_tally, counted=True) for _ in range(normal_tally.clients)]
    everyone: list[Client] = [*normal, *slow]
    try:
        if slow:
            await _connect_all(port, [(c, True) for c in slow], slow_tally)
            for n in range(PREFILL_EVENTS):  # while the slow ones read nothing at all
                await publish(
                    redis,
                    {"kind": "bench", "device_id": "bench", "severity": None, "pad": PAD, "p": n},
                )
        await _connect_all(port, [(c, False) for c in normal], normal_tally)
        for slow_client in slow:
            slow_client.start_reading()
        interval = 1.0 / run.rate
        warm = int(run.warmup * run.rate)
        total = warm + int(run.seconds * run.rate)
        normal_tally.expected = total
        cpu_before = cpu_seconds(notifier.pid), cpu_seconds(os.getpid())
        started = time.perf_counter()
        for n in range(total):
            # Paced on a schedule, not by sleeping a fixed gap: slowness does not add up.
            delay = started + n * interval - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            await publish(
                redis,
                {
                    "kind": "bench",
                    "device_id": "bench",
                    "severity": None,
                    "sent": time.time(),
                    "n": n,
                },
            )
        published_for = time.perf_counter() - started
        notifier_cpu = (cpu_seconds(notifier.pid) - cpu_before[0]) / published_for
        clients_cpu = (cpu_seconds(os.getpid()) - cpu_before[1]) / published_for
        with contextlib.suppress(TimeoutError):  # the last events in flight (bounded)
            await asyncio.wait_for(normal_tally.all_complete.wait(), 30)
    finally:
        for client in everyone:
            if hasattr(client, "transport"):
                client.transport.close()
    return Outcome(
        latencies=[c.latencies[warm:] for c in normal],
        missed=sum(total - len(c.seen) for c in normal),
        deliveries_per_s=total * run.clients / published_for,
        notifier_cpu=round(notifier_cpu, 2),
        clients_cpu=round(clients_cpu, 2),
        slow_cut_off=sum(c.closed for c in slow),
    )


def _pooled(latencies: list[list[float]]) -> list[float]:
    return [x for client in latencies for x in client]


async def run(size: Size, progress: Callable[[str], None]) -> list[Figure]:
    rate = 20.0
    seconds = size.pick(10.0, 2.0, 0.5)
    fleets = size.pick((100, 1000), (100, 1000), (10, 100))
    figures: list[Figure] = []
    async with cluster() as running:
        notifier = await running.start("notifier")
        token = dashboard_token(running.dashboard_secret, "bench")
        redis = connect(running.redis.url)
        try:

            async def one(clients: int, slow: int = 0, at: float = rate) -> Outcome:
                progress(f"fanout: {clients} clients ({slow} slow), {at:g} events/s, {seconds:g} s")
                return await measure(notifier, token, redis, Run(clients, slow, at, seconds))

            floor = _pooled((await one(1)).latencies)
            pooled: dict[int, list[float]] = {}
            for clients in fleets:
                outcome = await one(clients)
                pooled[clients] = _pooled(outcome.latencies)
                params = _params(clients, 0, rate, seconds, outcome)
                for q in (0.5, 0.99):
                    figures.append(
                        Figure(
                            STAGE,
                            f"fan-out to {clients:,} clients at {rate:g} events/s, p{q * 100:g}",
                            percentile(pooled[clients], q) * 1e3,
                            "ms",
                            percentile(floor, q) * 1e3,
                            f"one client, p{q * 100:g}",
                            Target("<", 100.0) if clients == fleets[-1] and q == 0.99 else None,
                            params,
                        )
                    )
            if size is Size.FULL:  # five times the rate: where the headroom ends
                fast = 5 * rate
                outcome = await one(1000, at=fast)
                figures.append(
                    Figure(
                        STAGE,
                        f"fan-out to 1,000 clients at {fast:g} events/s, p99",
                        percentile(_pooled(outcome.latencies), 0.99) * 1e3,
                        "ms",
                        percentile(pooled[1000], 0.99) * 1e3,
                        f"the same at {rate:g} events/s",
                        Target("<", 100.0),
                        _params(1000, 0, fast, seconds, outcome),
                    )
                )
            figures += await _slow_figures(one, size, rate, seconds, fleets[-1])
        finally:
            await redis.aclose()
    return figures


async def _slow_figures(
    one: Callable[..., Any], size: Size, rate: float, seconds: float, clients: int
) -> list[Figure]:
    """The same 90% of the clients with the other 10% normal, then slow, in turns."""
    slow = clients // 10
    with_slow: list[float] = []
    without: list[float] = []
    ratios: list[float] = []
    last: Outcome | None = None
    for _ in range(size.pick(2, 1, 1)):
        plain: Outcome = await one(clients)
        others = _pooled(plain.latencies[: clients - slow])
        last = await one(clients, slow)
        slowed = _pooled(last.latencies)
        without += others
        with_slow += slowed
        ratios.append(percentile(slowed, 0.99) / percentile(others, 0.99))
    assert last is not None
    params = {**_params(clients, slow, rate, seconds, last), "pairs": len(ratios)}
    p99_without = percentile(without, 0.99) * 1e3
    return [
        Figure(
            STAGE,
            f"fan-out p99 of the {clients - slow:,} others with {slow:,} slow clients, "
            f"{rate:g} events/s",
            percentile(with_slow, 0.99) * 1e3,
            "ms",
            p99_without,
            f"the same {clients - slow:,} clients, the other {slow:,} reading normally",
            Target("<=", 1.2, "ratio"),
            params,
            [round(r, 3) for r in ratios],
        ),
    ]


def _params(clients: int, slow: int, rate: float, seconds: float, o: Outcome) -> dict[str, Any]:
    return {
        "clients": clients,
        "slow_clients": slow,
        "events_per_s": rate,
        "seconds": seconds,
        "deliveries_per_s": round(o.deliveries_per_s),
        "missed": o.missed,
        "notifier_cpu_cores": o.notifier_cpu,
        "clients_cpu_cores": o.clients_cpu,
        "slow_cut_off": o.slow_cut_off,
        "notifier": "one process, default settings",
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.fanout", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--slow", type=float, default=0.0, help="share of slow clients (0-0.5)")
    parser.add_argument("--rate", type=float, default=20.0, help="events published per second")
    parser.add_argument("--seconds", type=float, default=10.0, help="publishing time measured")
    args = parser.parse_args()
    if not (
        1 <= args.clients <= 5000
        and 0 < args.rate <= 1000
        and 0 < args.seconds <= 120
        and 0 <= args.slow <= 0.5
    ):
        parser.error("bounds: 1-5000 clients, rate <= 1000/s, seconds <= 120, slow <= 0.5")
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()

    async def go() -> dict[str, Any]:
        async with cluster() as running:
            notifier = await running.start("notifier")
            redis = connect(running.redis.url)
            try:
                slow = int(args.clients * args.slow)
                o = await measure(
                    notifier,
                    dashboard_token(running.dashboard_secret, "bench"),
                    redis,
                    Run(args.clients, slow, args.rate, args.seconds),
                )
            finally:
                await redis.aclose()
        pooled = _pooled(o.latencies)
        return {
            **_params(args.clients, slow, args.rate, args.seconds, o),
            **{f"p{q}_ms": round(percentile(pooled, q / 100) * 1e3, 2) for q in (50, 90, 99)},
            "max_ms": round(max(pooled) * 1e3, 2),
        }

    print(json.dumps(asyncio.run(go())))


if __name__ == "__main__":
    main()
