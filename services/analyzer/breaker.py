"""A circuit breaker for the model, per replica: closed, open, half-open.

Closed: calls go through; `failures` consecutive failures open it. Open: no call for
`cooldown_s`, the built-in analyzer answers. Then half-open: exactly one probe call; its
success closes the circuit, its failure opens it again. Time comes from an injectable
clock. It never calls anything itself.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from services.analyzer import metrics

log = logging.getLogger(__name__)

CLOSED, HALF_OPEN, OPEN = 0, 1, 2
NAMES = {CLOSED: "closed", HALF_OPEN: "half_open", OPEN: "open"}


class CircuitBreaker:
    def __init__(
        self, failures: int, cooldown_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.threshold = failures
        self.cooldown_s = cooldown_s
        self.clock = clock
        self.state = CLOSED
        self.failures = 0
        self.opened_at = 0.0
        self._probing = False
        metrics.BREAKER_STATE.set(CLOSED)

    def _move(self, state: int) -> None:
        if state != self.state:
            self.state = state
            metrics.BREAKER_STATE.set(state)
            metrics.BREAKER_TRANSITIONS.labels(NAMES[state]).inc()
            log.warning("model circuit %s", NAMES[state].replace("_", "-"))

    def allow(self) -> bool:
        """May a call go out now? In half-open state only one caller gets True."""
        if self.state == OPEN and self.clock() - self.opened_at >= self.cooldown_s:
            self._move(HALF_OPEN)
            self._probing = False
        if self.state == CLOSED:
            return True
        if self.state == HALF_OPEN and not self._probing:
            self._probing = True
            return True
        return False

    def success(self) -> None:
        self.failures = 0
        self._probing = False
        self._move(CLOSED)

    def failure(self) -> None:
        self._probing = False
        self.failures += 1
        if self.state == HALF_OPEN or self.failures >= self.threshold:
            self.opened_at = self.clock()
            self._move(OPEN)

    def abandon(self) -> None:
        """An allowed call did not happen (no budget, rate-limit wait): free the probe."""
        self._probing = False

    @property
    def retry_in(self) -> float:
        """Seconds until an open circuit lets a probe through."""
        if self.state != OPEN:
            return 0.0
        return max(0.0, self.cooldown_s - (self.clock() - self.opened_at))
