"""The circuit breaker on a driven clock, and its metrics."""

from __future__ import annotations

from prometheus_client import REGISTRY

from services.analyzer.breaker import CLOSED, HALF_OPEN, OPEN, CircuitBreaker


class Clock:
    now = 100.0

    def __call__(self) -> float:
        return self.now


def state_metric() -> float | None:
    return REGISTRY.get_sample_value("vigil_analyzer_breaker_state")


def transitions(to: str) -> float:
    return REGISTRY.get_sample_value("vigil_analyzer_breaker_transitions_total", {"to": to}) or 0


def test_opens_after_consecutive_failures_and_probes_once_after_cooldown() -> None:
    clock = Clock()
    breaker = CircuitBreaker(3, 30, clock)
    opened = transitions("open")
    breaker.failure()
    breaker.failure()
    breaker.success()  # a success resets the count
    breaker.failure()
    breaker.failure()
    assert breaker.allow() and breaker.state == CLOSED
    breaker.failure()
    assert breaker.state == OPEN and state_metric() == OPEN
    assert transitions("open") == opened + 1
    assert not breaker.allow() and breaker.retry_in == 30
    clock.now += 30
    assert breaker.allow() and breaker.state == HALF_OPEN and state_metric() == HALF_OPEN
    assert not breaker.allow()  # one probe only
    breaker.failure()
    assert breaker.state == OPEN and not breaker.allow()
    clock.now += 30
    assert breaker.allow()
    breaker.success()
    assert breaker.state == CLOSED and state_metric() == CLOSED and breaker.allow()


def test_an_abandoned_probe_lets_the_next_caller_probe() -> None:
    clock = Clock()
    breaker = CircuitBreaker(1, 5, clock)
    breaker.failure()
    clock.now += 5
    assert breaker.allow()
    breaker.abandon()  # e.g. the budget was reached before the call
    assert breaker.allow()
