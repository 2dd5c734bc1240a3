"""The /ws endpoint: authenticate, subscribe, replay, then stream live events.

Each connection runs two tasks: a sender that writes what the hub delivers, and a
receiver that reads the client's frames (pings, malformed input). The handler waits
for the first of: the client leaving, the sender ending, or the hub cutting the client
off because its mailbox overflowed. A cut client is closed with 4408 if the close frame
can still be written in time, else its connection is dropped: a client that never
reads cannot hold anything of the server's. Dead peers are found by protocol pings
(`heartbeat`). Close codes: 4400 bad request, 4401 unauthenticated, 4408 too slow,
1009 frame too large. Must never let one client's trouble reach another.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import Callable
from typing import Any

from aiohttp import WSMsgType, web

from services.common import auth
from services.common import metrics as common_metrics
from services.common.cancel import cancel_and_wait
from services.common.errors import InvalidArgument, Unauthenticated, VigilError
from services.notifier import metrics
from services.notifier.entry import Entry, text_frame
from services.notifier.hub import Hub, Snapshot, Subscriber
from services.notifier.mailbox import TooSlow
from services.notifier.protocol import (
    Subscribe,
    dumps,
    error_frame,
    events_frame,
    parse_frame,
    parse_subscribe,
)
from services.notifier.settings import NotifierSettings

log = logging.getLogger(__name__)

CLOSE_BAD_REQUEST = 4400
CLOSE_UNAUTHENTICATED = 4401
CLOSE_TOO_SLOW = 4408
SUBSCRIBE_TIMEOUT_S = 10.0
CLOSE_TIMEOUT_S = 2.0
PONG = dumps({"type": "pong"})
#: Bytes a client may have waiting in its socket buffer and still be written to
#: directly; beyond it, its events queue in its mailbox (and may cut it off).
DIRECT_LIMIT = 64 * 1024


def origin_allowed(request: web.Request, allowed: tuple[str, ...]) -> bool:
    origin = request.headers.get("Origin")
    if origin is None:
        return True  # not a browser; the token still decides
    if origin in allowed:
        return True
    return origin in {f"http://{request.host}", f"https://{request.host}"}


async def _refuse(ws: web.WebSocketResponse, error: VigilError, code: int) -> None:
    with contextlib.suppress(ConnectionError, RuntimeError):
        await ws.send_str(error_frame(error.status.lower(), error.message))
        await ws.close(code=code, message=error.status.encode())


def direct_writer(
    request: web.Request, ws: web.WebSocketResponse, batch: bool
) -> Callable[[list[Entry]], bool] | None:
    """Write entries' prebuilt frames straight to the socket while its buffer is short.

    Only for uncompressed connections (a prebuilt frame is the same bytes for every
    client). Returns False when the socket is closing or would back up past
    DIRECT_LIMIT; the entries then go through the client's mailbox and sender, which
    respect flow control (and cut the client off if it stays behind).
    """
    transport = request.transport
    if transport is None or ws.compress:
        return None

    def write(entries: list[Entry]) -> bool:
        if batch and len(entries) > 1:
            wire = text_frame(events_frame(entries).encode())
        else:
            wire = b"".join(entry.wire for entry in entries)
        if transport.is_closing() or transport.get_write_buffer_size() + len(wire) > DIRECT_LIMIT:
            return False
        transport.write(wire)
        return True

    return write


def bound_send_buffer(request: web.Request, size: int) -> None:
    """Fix the connection's kernel send buffer at `size` bytes (0: leave autotuning).

    With autotuning a client that stops reading can hold megabytes in the kernel
    before a single event waits in its mailbox, so it would be cut off only after
    thousands of events; with a fixed buffer, after about `size` bytes more.
    """
    sock = request.transport.get_extra_info("socket") if request.transport else None
    if size > 0 and sock is not None:
        with contextlib.suppress(OSError):  # the peer may already be gone
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)


async def _stop(tasks: list[asyncio.Task[Any]]) -> None:
    await cancel_and_wait(tasks)
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError, ConnectionError, RuntimeError):
            await task


class WebSocketEndpoint:
    def __init__(self, settings: NotifierSettings, hub: Hub) -> None:
        self.settings = settings
        self.hub = hub

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if not origin_allowed(request, self.settings.allowed_origins):
            metrics.WS_REJECTED.labels("origin").inc()
            raise web.HTTPForbidden(text="origin not allowed")
        ws = web.WebSocketResponse(
            heartbeat=self.settings.ws_heartbeat_s,
            max_msg_size=self.settings.ws_max_message_bytes,
            compress=self.settings.ws_compress,
            timeout=CLOSE_TIMEOUT_S,
        )
        await ws.prepare(request)
        bound_send_buffer(request, self.settings.ws_send_buffer_bytes)
        metrics.WS_CLIENTS.inc()
        try:
            subscribe = await self._subscribe(ws)
            if subscribe is not None:
                await self._session(request, ws, subscribe)
        finally:
            metrics.WS_CLIENTS.dec()
        return ws

    async def _subscribe(self, ws: web.WebSocketResponse) -> Subscribe | None:
        try:
            message = await ws.receive(timeout=SUBSCRIBE_TIMEOUT_S)
        except TimeoutError:
            await _refuse(ws, InvalidArgument("frame", "no subscribe frame in time"), 4400)
            return None
        if message.type == WSMsgType.ERROR:
            metrics.WS_REJECTED.labels("size").inc()
            return None  # aiohttp has closed it with the reason (1009 for a large frame)
        if message.type != WSMsgType.TEXT:
            metrics.WS_REJECTED.labels("frame").inc()
            await _refuse(ws, InvalidArgument("frame", "expected a text frame"), 4400)
            return None
        try:
            subscribe = parse_subscribe(parse_frame(message.data))
            auth.verify_dashboard(self.settings.dashboard_secret.reveal(), subscribe.token)
        except Unauthenticated as exc:
            metrics.WS_REJECTED.labels("token").inc()
            await _refuse(ws, exc, CLOSE_UNAUTHENTICATED)
            return None
        except InvalidArgument as exc:
            metrics.WS_REJECTED.labels("frame").inc()
            await _refuse(ws, exc, CLOSE_BAD_REQUEST)
            return None
        return subscribe

    async def _session(
        self, request: web.Request, ws: web.WebSocketResponse, subscribe: Subscribe
    ) -> None:
        sub = self.hub.register(subscribe.filter, self.settings.client_queue)
        tasks: list[asyncio.Task[Any]] = []
        try:
            await ws.send_str('{"type":"subscribed"}')
            sub.direct = direct_writer(request, ws, subscribe.batch)
            sender = asyncio.create_task(self._send(ws, sub, subscribe))
            tasks = [sender, asyncio.create_task(self._receive(ws))]
            tasks.append(asyncio.create_task(sub.mailbox.overflowed.wait()))
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            sub.direct = None  # the session is ending: nothing more straight to the socket
            if sub.mailbox.overflowed.is_set():
                await _stop(tasks)
                await self._cut(request, ws)
        except (ConnectionError, RuntimeError):
            pass  # the client went away while we were writing to it
        finally:
            sub.direct = None
            self.hub.unregister(sub)
            await _stop(tasks)

    async def _cut(self, request: web.Request, ws: web.WebSocketResponse) -> None:
        """Too slow: say why if the socket still takes a close frame in time, else drop it."""
        log.info("cutting off a slow WebSocket client")
        try:
            await asyncio.wait_for(
                ws.close(code=CLOSE_TOO_SLOW, message=b"too slow: reconnect with last_id"),
                CLOSE_TIMEOUT_S,
            )
        except (TimeoutError, ConnectionError, RuntimeError):
            if request.transport is not None:
                request.transport.abort()

    async def _send(self, ws: web.WebSocketResponse, sub: Subscriber, subscribe: Subscribe) -> None:
        """Write deliveries until the client is gone or cut off."""
        try:
            async for delivery in self.hub.deliveries(sub, subscribe.last_id):
                if isinstance(delivery, Snapshot):
                    frame = {"type": "reset", "id": delivery.position, "alerts": delivery.alerts}
                    await ws.send_str(dumps(frame))
                    continue
                if subscribe.batch and len(delivery) > 1:
                    await ws.send_str(events_frame(delivery))
                else:
                    for entry in delivery:
                        await ws.send_frame(entry.frame_bytes, WSMsgType.TEXT)
                metrics.WS_DELIVERED.inc(len(delivery))
                metrics.DELIVERY_LAG.observe(max(0.0, time.time() - delivery[0].key[0] / 1000))
        except (TooSlow, ConnectionError, RuntimeError):
            return  # cut off (the handler closes it) or gone
        except Exception:  # the boundary of one client: log, count, close only this one
            common_metrics.ERRORS.labels("notifier", "ws_send").inc()
            log.exception("sending to a WebSocket client failed")

    async def _receive(self, ws: web.WebSocketResponse) -> None:
        async for message in ws:
            if message.type != WSMsgType.TEXT:
                metrics.WS_REJECTED.labels("frame").inc()
                await ws.send_str(error_frame("invalid_argument", "frame: expected a text frame"))
                continue
            try:
                frame = parse_frame(message.data)
                if frame["type"] != "ping":
                    raise InvalidArgument("type", f"unknown frame type {frame['type'][:32]!r}")
            except InvalidArgument as exc:
                metrics.WS_REJECTED.labels("frame").inc()
                await ws.send_str(error_frame("invalid_argument", exc.message))
                continue
            await ws.send_str(PONG)
        if ws.close_code == 1009:
            metrics.WS_REJECTED.labels("size").inc()
