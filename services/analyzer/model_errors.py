"""How a failed model call is classified: worth another try (`Retry`, with how long the
server asked to wait) or not (`ModelUnavailable`, with a reason for the metrics and a
note for the dashboard). Plain functions of the `openai` library's exceptions; nothing
here calls the model or waits.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping

import openai


class ModelUnavailable(Exception):
    """No model answer; `reason` is a metric label, `note` says why for the dashboard."""

    def __init__(self, reason: str, note: str) -> None:
        super().__init__(note)
        self.reason = reason
        self.note = note


class Retry(Exception):
    """A failed call worth another try: `outcome` labels the metric, `delay_s` is what
    the server asked to wait (None: back off exponentially)."""

    def __init__(self, outcome: str, note: str, delay_s: float | None) -> None:
        super().__init__(note)
        self.outcome = outcome
        self.note = note
        self.delay_s = delay_s


def retry_after_s(headers: Mapping[str, str] | None, now: float) -> float | None:
    """Seconds the server asked to wait: retry-after-ms, retry-after (seconds or date)."""
    if not headers:
        return None
    for name, divisor in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return max(0.0, float(value) / divisor)
        except ValueError:
            pass
    moment = headers.get("retry-after")
    parsed = email.utils.parsedate_tz(moment) if moment else None
    if parsed is None:
        return None
    return max(0.0, email.utils.mktime_tz(parsed) - now)


# Failures without a status code, in the order they are matched (a timeout is also a
# connection error): (exception types, metric outcome, note for the dashboard).
TRANSIENT: tuple[tuple[tuple[type[Exception], ...], str, str], ...] = (
    ((openai.APITimeoutError,), "timeout", "the model timed out"),
    ((openai.APIConnectionError,), "connection", "cannot reach the model"),
    (
        (openai.APIResponseValidationError, ValueError),
        "server_error",
        "malformed answer from the model",
    ),
)


def classify(exc: Exception) -> tuple[str, Exception] | None:
    """(metric outcome, what to raise) for a failed call: a Retry for what may pass,
    ModelUnavailable for what will not; None for what is not a model failure."""
    if isinstance(exc, openai.APIStatusError):
        delay = retry_after_s(exc.response.headers, time.time())
        if isinstance(exc, openai.RateLimitError):
            return "rate_limited", Retry(
                "rate_limited", "rate limited by the model provider", delay
            )
        if exc.status_code >= 500 or exc.status_code in (408, 409):
            note = f"model error {exc.status_code}"
            return "server_error", Retry("server_error", note, delay)
        note = f"the model refused the request ({exc.status_code})"
        return "refused", ModelUnavailable("model_error", note)
    for types, outcome, note in TRANSIENT:
        if isinstance(exc, types):
            return outcome, Retry(outcome, note, None)
    return None
