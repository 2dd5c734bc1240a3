"""Fan-out latency of the notifier to N loopback WebSocket clients.

Starts a private redis-server and one notifier process (`vigil serve notifier`, as in
production), connects N dashboard clients from this process, then publishes events to
`vigil:events` at a fixed rate. Each event carries its publish time; each client notes
when it arrives. Reported: latency p50/p90/p99/max over every (event, client) pair,
deliveries per second, and events missed (must be 0).

    .venv/bin/python bench/fanout.py --clients 1000 --rate 20 --seconds 10

Bounded by design: at most 5,000 clients, 1,000 events/s and 120 s, on 127.0.0.1
only. The notifier runs in its own process; the clients are raw asyncio protocols that
parse only what they need, so on a 2-core machine the figure is the notifier's, not
the harness's (both processes' CPU use is reported to check that). Prints one JSON
line last, for tooling.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import re
import secrets
import statistics
import sys
import tempfile
import time
from asyncio.subprocess import Process
from pathlib import Path
from typing import Any, cast

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from services.common.auth import dashboard_token  # noqa: E402
from services.common.embedded_redis import EmbeddedRedis, free_port  # noqa: E402
from services.common.events import publish  # noqa: E402
from services.common.redis_client import connect  # noqa: E402

SENT = re.compile(rb'"sent":([0-9.]+),"n":(\d+)')


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=20.0, help="events published per second")
    parser.add_argument("--seconds", type=float, default=10.0, help="publishing time measured")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds published, not measured")
    parser.add_argument("--batch", action="store_true", help="clients ask for batch frames")
    args = parser.parse_args()
    if not (1 <= args.clients <= 5000 and 0 < args.rate <= 1000 and 0 < args.seconds <= 120):
        parser.error("bounds: 1-5000 clients, rate <= 1000/s, seconds <= 120")
    return args


async def wait_ready(url: str, process: Process, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if process.returncode is not None:
                raise RuntimeError("the notifier exited during start-up")
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(url + "/readyz") as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.1)  # polling a process we do not own: nothing to await
    raise RuntimeError("the notifier did not become ready")


class Client(asyncio.Protocol):
    """A minimal WebSocket client on a raw asyncio protocol: it frames and reads only
    what it needs, so 1,000 of them in one process cost far less than 1,000 aiohttp
    clients and the figure measures the notifier, not the harness."""

    #: Events each client must see; clients that have seen them all; set when all have.
    expected = 0
    complete = 0
    all_complete: asyncio.Event

    def __init__(self, subscribe: bytes, connected: asyncio.Event, counter: list[int]) -> None:
        self.subscribe = subscribe
        self.connected = connected
        self.counter = counter
        self.buffer = b""
        self.upgraded = False
        self.latencies: list[float] = []
        self.seen: set[int] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        now = time.time()
        self.buffer += data
        if not self.upgraded:
            head, sep, rest = self.buffer.partition(b"\r\n\r\n")
            if not sep:
                return
            assert head.startswith(b"HTTP/1.1 101"), head[:80]
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
                self.counter[0] += 1
                if self.counter[0] == self.counter[1]:
                    self.connected.set()
                continue
            for sent, n in SENT.findall(payload):
                self.latencies.append(now - float(sent))
                self.seen.add(int(n))
                if len(self.seen) == Client.expected:
                    Client.complete += 1
                    if Client.complete == self.counter[1]:
                        Client.all_complete.set()


def masked_text(payload: bytes) -> bytes:
    mask = os.urandom(4)
    size = len(payload)
    header = (
        bytes((0x81, 0x80 | size)) if size < 126 else bytes((0x81, 0xFE)) + size.to_bytes(2, "big")
    )
    return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


async def open_client(
    port: int, subscribe: bytes, connected: asyncio.Event, counter: list[int]
) -> Client:
    loop = asyncio.get_running_loop()
    _, client = await loop.create_connection(
        lambda: Client(subscribe, connected, counter), "127.0.0.1", port
    )
    key = base64.b64encode(os.urandom(16)).decode()
    client.transport.write(
        f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    return client


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp, EmbeddedRedis(Path(tmp), appendonly=False) as redis:
        secret = secrets.token_hex(32)
        http_port = free_port()
        env = {
            **os.environ,
            "REDIS_URL": redis.url,
            "VIGIL_DASHBOARD_SECRET": secret,
            "VIGIL_HTTP_PORT": str(http_port),
            "VIGIL_GRPC_PORT": str(free_port()),
            "VIGIL_METRICS_PORT": str(free_port()),
            "VIGIL_LOG_LEVEL": "warning",
            "VIGIL_WS_QUEUE": "100000",
        }
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "services.cli", "serve", "notifier", env=env, cwd=ROOT
        )
        try:
            await wait_ready(f"http://127.0.0.1:{http_port}", process)
            return await measure(
                args, http_port, dashboard_token(secret, "bench"), redis.url, process.pid
            )
        finally:
            process.terminate()
            await asyncio.wait_for(process.wait(), 15)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measure(
    args: argparse.Namespace, port: int, token: str, redis_url: str, notifier_pid: int
) -> dict[str, Any]:
    connected = asyncio.Event()
    counter = [0, args.clients]
    subscribe = masked_text(json.dumps({"type": "subscribe", "token": token,
                                        "batch": args.batch}).encode())  # fmt: skip
    clients = [await open_client(port, subscribe, connected, counter) for _ in range(args.clients)]
    try:
        await asyncio.wait_for(connected.wait(), 120)
        redis = connect(redis_url)
        interval = 1.0 / args.rate
        warm = int(args.warmup * args.rate)
        total = warm + int(args.seconds * args.rate)
        Client.expected, Client.complete, Client.all_complete = total, 0, asyncio.Event()
        started = time.perf_counter()
        cpu_before = cpu_seconds(notifier_pid), cpu_seconds(os.getpid())
        for n in range(total):
            # Paced on a schedule, not by sleeping a fixed gap: slowness does not add up.
            delay = started + n * interval - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            await publish(redis, {"kind": "bench", "device_id": "bench", "severity": None,
                                  "sent": time.time(), "n": n})  # fmt: skip
        published_for = time.perf_counter() - started
        notifier_cpu = (cpu_seconds(notifier_pid) - cpu_before[0]) / published_for
        clients_cpu = (cpu_seconds(os.getpid()) - cpu_before[1]) / published_for
        # Let the last events arrive (bounded), then stop.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(Client.all_complete.wait(), 30)
        await redis.aclose()
    finally:
        for client in clients:
            client.transport.close()
    measured = sorted(lat for c in clients for lat in c.latencies[warm:])
    cuts = statistics.quantiles(measured, n=100)
    missed = sum(total - len(c.seen) for c in clients)
    return {
        "clients": args.clients,
        "rate": args.rate,
        "seconds": args.seconds,
        "batch": args.batch,
        "deliveries": len(measured),
        "deliveries_per_s": round(total * args.clients / published_for),
        "p50_ms": round(cuts[49] * 1e3, 2),
        "p90_ms": round(cuts[89] * 1e3, 2),
        "p99_ms": round(cuts[98] * 1e3, 2),
        "max_ms": round(measured[-1] * 1e3, 2),
        "missed": missed,
        # Share of one core used while publishing: near 1.0 means that side is the limit.
        "notifier_cpu": round(notifier_cpu, 2),
        "clients_cpu": round(clients_cpu, 2),
    }


def main() -> None:
    args = parse_args()
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    result = asyncio.run(bench(args))
    print(
        f"fan-out to {result['clients']} clients at {result['rate']:g} events/s "
        f"(batch={result['batch']}): "
        f"p50 {result['p50_ms']} ms, p90 {result['p90_ms']} ms, p99 {result['p99_ms']} ms, "
        f"max {result['max_ms']} ms; {result['deliveries_per_s']} deliveries/s; "
        f"missed {result['missed']}; CPU notifier {result['notifier_cpu']:.0%}, "
        f"clients {result['clients_cpu']:.0%}"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
