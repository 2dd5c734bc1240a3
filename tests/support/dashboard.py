"""A dashboard that stays subscribed through anything: a WebSocket client that, whenever
its connection ends (a notifier killed, a link cut), reconnects with the id of the last
event it got, as the page does. It keeps every event frame it received, in order."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import aiohttp

from services.common.events import stream_id_key


class Dashboard:
    def __init__(self, base_url: str, token: str, **subscribe: Any) -> None:
        self.url = base_url.rstrip("/") + "/ws"
        self.token = token
        self.subscribe = subscribe
        self.received: list[tuple[str, dict[str, Any]]] = []
        self.last_id: str | None = None
        self.connections = 0
        self.resets = 0
        self._progress = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="dashboard")
        await self.wait_connected(1)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def wait_connected(self, count: int, timeout_s: float = 30.0) -> None:
        async with self._progress:
            await asyncio.wait_for(
                self._progress.wait_for(lambda: self.connections >= count), timeout_s
            )

    async def wait_for(self, entry_id: str, timeout_s: float = 60.0) -> None:
        """Until an event with id `entry_id` or later has arrived."""
        target = stream_id_key(entry_id)

        def reached() -> bool:
            return self.last_id is not None and stream_id_key(self.last_id) >= target

        async with self._progress:
            await asyncio.wait_for(self._progress.wait_for(reached), timeout_s)

    async def _run(self) -> None:
        backoff = 0.05
        async with aiohttp.ClientSession() as http:
            while True:
                try:
                    await self._session(http)
                    backoff = 0.05
                except (aiohttp.ClientError, OSError, TimeoutError, AssertionError):
                    pass  # the notifier is away: try again, as the page does
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 1.0)

    async def _session(self, http: aiohttp.ClientSession) -> None:
        async with http.ws_connect(self.url, heartbeat=5.0) as ws:
            frame = {"type": "subscribe", "token": self.token, "last_id": self.last_id}
            await ws.send_str(json.dumps({**frame, **self.subscribe}))
            first = await ws.receive(timeout=10.0)
            assert first.type == aiohttp.WSMsgType.TEXT, first
            assert json.loads(first.data) == {"type": "subscribed"}, first.data
            async with self._progress:
                self.connections += 1
                self._progress.notify_all()
            async for message in ws:
                if message.type != aiohttp.WSMsgType.TEXT:
                    break
                await self._frame(json.loads(message.data))

    async def _frame(self, frame: dict[str, Any]) -> None:
        if frame["type"] == "event":
            items = [frame]
        elif frame["type"] == "events":
            items = frame["events"]
        elif frame["type"] == "reset":
            self.resets += 1
            items = []
            self.last_id = frame["id"]
        else:
            return
        async with self._progress:
            for item in items:
                self.received.append((item["id"], item["event"]))
                self.last_id = item["id"]
            self._progress.notify_all()
