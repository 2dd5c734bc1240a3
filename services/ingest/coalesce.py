"""Coalescing: many concurrent requests become few large calls.

Each device stream submits one item at a time (a batch to judge, a batch to commit);
a `Coalescer` sends whatever has queued up as one call (one Detect to a shard, one
Redis pipeline), with at most `max_in_flight` calls outstanding. Nothing waits on a
timer: an item goes out at once when a call slot is free, and while all are busy
items pile up into the next call, so batching grows exactly when load does.

Order: items leave in submission order, and a device never has two items in one
coalescer at once (its stream awaits each), so per-device order holds. A failing call
fails every item in it with the same exception. Never holds more than `max_items` per
call; the queue itself is bounded by the callers (each stream's in-flight window).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from services.common.cancel import cancel_and_wait

T = TypeVar("T")
R = TypeVar("R")
log = logging.getLogger(__name__)


class Coalescer(Generic[T, R]):
    """Submit items one by one; `call` receives them in lists and returns one result
    per item, in order."""

    def __init__(
        self,
        call: Callable[[list[T]], Awaitable[Sequence[R]]],
        *,
        max_items: int,
        max_in_flight: int,
        on_call: Callable[[int, float], None] | None = None,
    ) -> None:
        self._call = call
        self._max_items = max_items
        self._slots = asyncio.Semaphore(max_in_flight)
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._wake = asyncio.Event()
        self._on_call = on_call  # (items, seconds) of each finished call, for metrics
        self._task: asyncio.Task[None] | None = None
        self._calls: set[asyncio.Task[None]] = set()

    @property
    def backlog(self) -> int:
        """Items waiting for a call slot."""
        return len(self._pending)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="coalescer")

    async def stop(self) -> None:
        tasks = [t for t in (self._task, *self._calls) if t is not None]
        await cancel_and_wait(tasks)
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for _, future in self._pending:
            if not future.done():
                future.cancel()
        self._pending.clear()

    async def submit(self, item: T) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        self._wake.set()
        return await future

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                await self._slots.acquire()
                taken = self._pending[: self._max_items]
                del self._pending[: self._max_items]
                task = asyncio.create_task(self._send(taken))
                self._calls.add(task)
                task.add_done_callback(self._calls.discard)

    async def _send(self, taken: list[tuple[T, asyncio.Future[R]]]) -> None:
        started = time.perf_counter()
        try:
            results = await self._call([item for item, _ in taken])
        except asyncio.CancelledError:
            for _, future in taken:
                future.cancel()
            raise
        except Exception as exc:  # every item of the call fails alike
            for _, future in taken:
                if not future.done():
                    future.set_exception(exc)
            return
        finally:
            self._slots.release()
            if self._on_call is not None:
                self._on_call(len(taken), time.perf_counter() - started)
        for (_, future), result in zip(taken, results, strict=True):
            if not future.done():
                future.set_result(result)
