"""Flow control: how many unacknowledged batches each device may have in flight.

One window for the whole ingest process, told to every device in `Flow` messages. It
follows how the stages behind ingest keep up: the time from a batch's arrival to its
ack (detector + Redis, with their queueing) and the number of batches waiting for a
detector call or a Redis pipeline. Above the target latency, or with a large backlog,
the window halves (at most once a second); well below it, with no backlog, it grows by
one (at most once a second) back to the configured maximum. Memory per device is then
bounded by window x batch size even with thousands of devices connected.

A pure policy with a clock you can drive (`decide`); `run` applies it periodically and
tells the registered listeners. Never blocks on a device.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

ALPHA = 0.2  # EWMA weight of one latency sample
STEP_S = 1.0  # at most one change a second
BACKLOG_HIGH = 512  # batches queued for the detector or Redis


class FlowController:
    def __init__(
        self,
        max_window: int,
        target_s: float,
        backlog: Callable[[], int],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_window = max_window
        self.window = max_window
        self.target_s = target_s
        self.backlog = backlog
        self.clock = clock
        self.latency_s = 0.0
        self._changed_at = -STEP_S
        self._listeners: set[Callable[[int], None]] = set()

    def observe(self, seconds: float) -> None:
        """One batch went from arrival to ack in `seconds`."""
        self.latency_s += ALPHA * (seconds - self.latency_s)

    def listen(self, listener: Callable[[int], None]) -> None:
        self._listeners.add(listener)

    def forget(self, listener: Callable[[int], None]) -> None:
        self._listeners.discard(listener)

    def decide(self) -> int:
        """Apply the policy now; returns the (possibly new) window."""
        now = self.clock()
        if now - self._changed_at < STEP_S:
            return self.window
        backlog = self.backlog()
        window = self.window
        if self.latency_s > self.target_s or backlog > BACKLOG_HIGH:
            window = max(1, window // 2)
        elif self.latency_s < self.target_s / 2 and backlog == 0:
            window = min(self.max_window, window + 1)
        if window != self.window:
            self.window = window
            self._changed_at = now
            for listener in list(self._listeners):
                listener(window)
        return self.window

    async def run(self, period_s: float = 0.25) -> None:
        while True:
            await asyncio.sleep(period_s)  # a control loop's tick, not synchronisation
            self.decide()
            # Without traffic no latency is observed; let it decay so the window recovers.
            if not self.backlog():
                self.latency_s *= 0.9
