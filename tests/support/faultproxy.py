"""A TCP proxy that breaks the link between two services on purpose.

It listens on 127.0.0.1 and forwards every connection to one target, in both
directions, until told otherwise:

- `delay(s)`: every chunk is forwarded `s` seconds after it arrived (order kept, so
  the link gets slower, not narrower);
- `drop()`: a blackhole: connections are still accepted and bytes still read, but
  nothing is forwarded either way, so a peer waits until its own deadline fires;
- `cut()`: every open connection is reset, and new ones are reset on arrival (a link
  or a peer that is gone);
- `heal()`: forward normally again. A connection that lost bytes in a blackhole is
  reset at heal (its protocol stream has a hole; TCP would have given up on it too).

Counters say what it did (connections accepted and reset, bytes forwarded and
dropped), so a test can show that the fault really happened. Loopback only; it never
touches the bytes it forwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field

CHUNK = 65536


@dataclass
class Counters:
    accepted: int = 0
    reset: int = 0  # connections closed by cut(), at heal after a blackhole, or on arrival
    bytes_forwarded: int = 0
    bytes_dropped: int = 0
    faults: list[str] = field(default_factory=list)  # every mode set, in order

    def line(self) -> str:
        return (
            f"accepted {self.accepted}, reset {self.reset}, forwarded "
            f"{self.bytes_forwarded} B, dropped {self.bytes_dropped} B"
        )


class _Link:
    """One proxied connection: two pumps, each with an ordered, delayable outbox."""

    def __init__(
        self,
        proxy: FaultProxy,
        client: tuple[asyncio.StreamReader, asyncio.StreamWriter],
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    ) -> None:
        self.proxy = proxy
        self.writers = (client[1], upstream[1])
        self.lost_bytes = False
        self.tasks = [
            asyncio.create_task(self._pump(client[0], upstream[1])),
            asyncio.create_task(self._pump(upstream[0], client[1])),
        ]

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        outbox: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()
        sender = asyncio.create_task(self._send(outbox, writer))
        try:
            while data := await reader.read(CHUNK):
                if self.proxy.mode == "drop":
                    self.proxy.counters.bytes_dropped += len(data)
                    self.lost_bytes = True
                    continue
                outbox.put_nowait((time.monotonic() + self.proxy.delay_s, data))
            outbox.put_nowait(None)  # the peer closed: close this side once sent
            await sender
        except (ConnectionError, OSError):
            pass
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError, OSError):
                await sender
            self.abort()

    async def _send(
        self, outbox: asyncio.Queue[tuple[float, bytes] | None], writer: asyncio.StreamWriter
    ) -> None:
        while (item := await outbox.get()) is not None:
            due, data = item
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)  # the delay is the fault itself
            if self.proxy.mode == "drop":  # went dark while this chunk waited
                self.proxy.counters.bytes_dropped += len(data)
                self.lost_bytes = True
                continue
            writer.write(data)
            await writer.drain()
            self.proxy.counters.bytes_forwarded += len(data)
        if writer.can_write_eof():
            writer.write_eof()

    def abort(self) -> None:
        for writer in self.writers:
            writer.transport.abort()


class FaultProxy:
    """Forwards 127.0.0.1:`port` to `target_host`:`target_port`, faults on demand."""

    def __init__(self, target_host: str, target_port: int, name: str = "") -> None:
        self.target = (target_host, target_port)
        self.name = name or f"{target_host}:{target_port}"
        self.mode = "pass"  # pass | drop | cut
        self.delay_s = 0.0
        self.counters = Counters()
        self.port = 0
        self._server: asyncio.Server | None = None
        self._links: set[_Link] = set()

    @classmethod
    def to(cls, address: str, name: str = "") -> FaultProxy:
        """A proxy for a "host:port" target."""
        host, port = address.rsplit(":", 1)
        return cls(host, int(port), name)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def redis_url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    @property
    def open_links(self) -> int:
        return len(self._links)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for link in list(self._links):
            link.abort()
        for link in list(self._links):
            await asyncio.gather(*link.tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    def delay(self, seconds: float) -> None:
        self.delay_s = seconds
        self.counters.faults.append(f"delay {seconds:g} s")

    def drop(self) -> None:
        self.mode = "drop"
        self.counters.faults.append("drop")

    def cut(self) -> None:
        self.mode = "cut"
        self.counters.faults.append("cut")
        for link in list(self._links):
            self.counters.reset += 1
            link.abort()

    def heal(self) -> None:
        for link in list(self._links):
            if link.lost_bytes:
                self.counters.reset += 1
                link.abort()
        self.mode = "pass"
        self.delay_s = 0.0
        self.counters.faults.append("heal")

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.counters.accepted += 1
        if self.mode == "cut":
            self.counters.reset += 1
            writer.transport.abort()
            return
        try:
            upstream = await asyncio.wait_for(asyncio.open_connection(*self.target), 5.0)
        except (OSError, TimeoutError):
            writer.transport.abort()  # the target is down: so is the link
            return
        link = _Link(self, (reader, writer), upstream)
        self._links.add(link)
        try:
            await asyncio.gather(*link.tasks, return_exceptions=True)
        finally:
            self._links.discard(link)
