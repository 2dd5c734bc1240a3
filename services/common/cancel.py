"""Stopping background tasks for certain.

One `Task.cancel()` is not always enough on Python 3.11: `asyncio.wait_for`, which
redis-py uses to send every command, returns normally when the cancellation arrives in
the same loop iteration as the result it was waiting for, and the cancellation is lost.
A loop task then runs on (into its next blocking read, or forever), and whoever awaits
it at shutdown hangs. `cancel_and_wait` cancels again while a task is still running
after `retry_s`. Never for a task that must be allowed to finish its work: a task's own
clean-up on cancellation gets `retry_s` before it is cancelled again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine, Iterable
from typing import Any

RETRY_S = 0.5


async def cancel_and_wait(
    tasks: Iterable[asyncio.Task[Any] | None], *, retry_s: float = RETRY_S
) -> None:
    """Cancel every task and return once all have ended (their results stay for the
    caller to collect)."""
    pending = {task for task in tasks if task is not None and not task.done()}
    for task in pending:
        task.cancel()
    while pending:
        _, pending = await asyncio.wait(pending, timeout=retry_s)
        for task in pending:
            task.cancel()  # the last cancellation was dropped: send another


class Background:
    """One named background loop and its stop. The loop tests `stopping` as well as being
    cancelled: a cancellation can be dropped (see above), and it must then end by itself
    at its next turn instead of running on."""

    def __init__(self) -> None:
        self.stopping = False
        self._task: asyncio.Task[None] | None = None

    def start(self, loop: Coroutine[Any, Any, None], name: str) -> None:
        self._task = asyncio.create_task(loop, name=name)

    async def stop(self) -> None:
        self.stopping = True
        if self._task is not None:
            await cancel_and_wait([self._task])
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def stray() -> bool:
    """True inside `except CancelledError` when the running task was not cancelled: a
    library let a cancellation of its own inner work escape (asyncio libraries have, on
    connections torn down under a pending read). A loop that must outlive Redis faults
    treats that as one more error; a real cancellation (`Task.cancel()`) still ends it."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() == 0


def cancelled(exc: BaseException) -> bool:
    """True when `exc` ends the running task: a real cancellation, not a stray one. A loop
    that catches `(CancelledError, Exception)` re-raises exactly these."""
    return isinstance(exc, asyncio.CancelledError) and not stray()
