"""The /ws endpoint: authenticate, subscribe, replay, then stream live events.

A sender task writes events; the handler itself reads the client's frames (pings,
malformed input), so a dead or slow client is noticed and closed without touching any
other client. Close codes: 4400 bad request, 4401 unauthenticated, 4408 too slow.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from aiohttp import WSMsgType, web

from services.common import auth
from services.common.errors import InvalidArgument, Unauthenticated, VigilError
from services.notifier import metrics
from services.notifier.hub import Hub, Reset, TooSlow
from services.notifier.protocol import parse_frame, parse_subscribe
from services.notifier.settings import NotifierSettings

log = logging.getLogger(__name__)

CLOSE_BAD_REQUEST = 4400
CLOSE_UNAUTHENTICATED = 4401
CLOSE_TOO_SLOW = 4408
SUBSCRIBE_TIMEOUT_S = 10.0


def dumps(frame: dict[str, Any]) -> str:
    return json.dumps(frame, separators=(",", ":"), ensure_ascii=False)


def origin_allowed(request: web.Request, allowed: tuple[str, ...]) -> bool:
    origin = request.headers.get("Origin")
    if origin is None:
        return True  # not a browser; the token still decides
    if origin in allowed:
        return True
    return origin in {f"http://{request.host}", f"https://{request.host}"}


async def _error(ws: web.WebSocketResponse, error: VigilError, code: int) -> None:
    frame = {"type": "error", "code": error.status.lower(), "message": error.message}
    with contextlib.suppress(ConnectionError, RuntimeError):
        await ws.send_str(dumps(frame))
        await ws.close(code=code, message=error.status.encode())


class WebSocketEndpoint:
    def __init__(self, settings: NotifierSettings, hub: Hub) -> None:
        self.settings = settings
        self.hub = hub

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if not origin_allowed(request, self.settings.allowed_origins):
            metrics.WS_REJECTED.labels("origin").inc()
            raise web.HTTPForbidden(text="origin not allowed")
        ws = web.WebSocketResponse(heartbeat=20.0, max_msg_size=self.settings.ws_max_message_bytes)
        await ws.prepare(request)
        metrics.WS_CLIENTS.inc()
        try:
            await self._session(ws)
        finally:
            metrics.WS_CLIENTS.dec()
        return ws

    async def _session(self, ws: web.WebSocketResponse) -> None:
        try:
            message = await ws.receive(timeout=SUBSCRIBE_TIMEOUT_S)
        except TimeoutError:
            await _error(
                ws, InvalidArgument("frame", "no subscribe frame in time"), CLOSE_BAD_REQUEST
            )
            return
        if message.type != WSMsgType.TEXT:
            metrics.WS_REJECTED.labels("frame").inc()
            await _error(ws, InvalidArgument("frame", "expected a text frame"), CLOSE_BAD_REQUEST)
            return
        try:
            request = parse_subscribe(parse_frame(message.data))
            auth.verify_dashboard(self.settings.dashboard_secret.reveal(), request.token)
        except Unauthenticated as exc:
            metrics.WS_REJECTED.labels("token").inc()
            await _error(ws, exc, CLOSE_UNAUTHENTICATED)
            return
        except InvalidArgument as exc:
            metrics.WS_REJECTED.labels("frame").inc()
            await _error(ws, exc, CLOSE_BAD_REQUEST)
            return

        sub = self.hub.register(request.filter, self.settings.client_queue)
        sender = asyncio.create_task(self._send(ws, sub, request.last_id))
        try:
            await ws.send_str(dumps({"type": "subscribed"}))
            await self._receive(ws)
        finally:
            self.hub.unregister(sub)
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender

    async def _send(self, ws: web.WebSocketResponse, sub: Any, last_id: str | None) -> None:
        try:
            async for entry_id, event in self.hub.events(sub, last_id):
                await ws.send_str(dumps({"type": "event", "id": entry_id, "event": event}))
                metrics.DELIVERED.labels("ws").inc()
        except Reset:
            await ws.send_str(dumps({"type": "reset"}))
            async for entry_id, event in self.hub.events(sub, None):
                await ws.send_str(dumps({"type": "event", "id": entry_id, "event": event}))
                metrics.DELIVERED.labels("ws").inc()
        except TooSlow:
            await ws.close(code=CLOSE_TOO_SLOW, message=b"too slow: reconnect with last_id")
        except (ConnectionError, RuntimeError):
            return

    async def _receive(self, ws: web.WebSocketResponse) -> None:
        async for message in ws:
            if message.type != WSMsgType.TEXT:
                metrics.WS_REJECTED.labels("frame").inc()
                await ws.send_str(
                    dumps(
                        {
                            "type": "error",
                            "code": "invalid_argument",
                            "message": "frame: expected a text frame",
                        }
                    )
                )
                continue
            try:
                frame = parse_frame(message.data)
                if frame["type"] != "ping":
                    raise InvalidArgument("type", f"unknown frame type {frame['type'][:32]!r}")
            except InvalidArgument as exc:
                metrics.WS_REJECTED.labels("frame").inc()
                await ws.send_str(
                    dumps({"type": "error", "code": "invalid_argument", "message": exc.message})
                )
                continue
            await ws.send_str(dumps({"type": "pong"}))
