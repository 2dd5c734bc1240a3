"""Calling the model: any OpenAI-compatible endpoint through the `openai` async client.

One `ask` is: circuit breaker -> budget reservation -> shared rate limits (a request and
the estimated tokens) -> the HTTP call with its own deadline -> settle tokens and spend
with the reported usage -> validate the structured answer. Failures (429, 5xx, timeouts,
lost connections, malformed bodies) are retried with exponential backoff, honouring
Retry-After, each retry going through the limits again; an answer that fails the schema
is asked once more. Whatever cannot be answered raises `ModelUnavailable` with a short
reason for the dashboard, and the caller falls back to the built-in analyzer. The
client's own retries are off so that every HTTP call is seen by the limits and the
breaker. This module never touches the queue or the cache.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass
from typing import Any, cast

from openai import AsyncOpenAI

from services.analyzer import metrics, schema
from services.analyzer.breaker import CircuitBreaker
from services.analyzer.budget import Budget, Prices
from services.analyzer.model_errors import ModelUnavailable, Retry, classify
from services.analyzer.prompt import Message, estimate_tokens
from services.analyzer.settings import LlmSettings
from services.common.errors import ResourceExhausted
from services.common.ratelimit import Limit, RateLimiter

log = logging.getLogger(__name__)

BACKOFF_CAP_S = 30.0


@dataclass(frozen=True, slots=True)
class Answer:
    insight: dict[str, Any]
    prompt_tokens: int
    completion_tokens: int
    cost: float
    calls: int


def limits(settings: LlmSettings) -> tuple[Limit, Limit]:
    """The shared request and token buckets; depth = `burst_s` seconds of each limit."""
    rpm, tpm = settings.requests_per_minute, settings.tokens_per_minute
    return (
        Limit("llm-requests", rpm, 60.0, max(1.0, rpm * settings.burst_s / 60.0)),
        Limit("llm-tokens", tpm, 60.0, max(1.0, tpm * settings.burst_s / 60.0)),
    )


def make_client(settings: LlmSettings) -> AsyncOpenAI:
    return AsyncOpenAI(
        api_key=settings.api_key.reveal(),
        base_url=settings.base_url,
        timeout=settings.timeout_s,
        max_retries=0,
    )


class ModelClient:
    def __init__(
        self,
        settings: LlmSettings,
        client: AsyncOpenAI | None,
        limiter: RateLimiter,
        budget: Budget,
        breaker: CircuitBreaker,
    ) -> None:
        self.settings = settings
        self.client = client
        self.limiter = limiter
        self.budget = budget
        self.breaker = breaker
        self.prices = Prices(settings.price_input_per_1k, settings.price_output_per_1k)
        self.requests, self.tokens = limits(settings)

    @property
    def enabled(self) -> bool:
        return self.client is not None

    async def close(self) -> None:
        if self.client is not None:
            await self.client.close()

    def _response_format(self) -> dict[str, Any]:
        if self.settings.response_format == "json_object":
            return {"type": "json_object"}
        return {
            "type": "json_schema",
            "json_schema": {"name": "insight", "schema": schema.INSIGHT_SCHEMA, "strict": True},
        }

    async def ask(self, messages: list[Message]) -> Answer:
        """A validated insight from the model, or ModelUnavailable."""
        prompt_estimate = estimate_tokens(messages)
        totals = [0, 0, 0.0, 0]  # prompt tokens, completion tokens, cost, calls
        for validation_try in range(2):  # an invalid answer is asked once more
            content = await self._call(messages, prompt_estimate, totals)
            try:
                insight = schema.parse(content)
            except schema.InvalidOutput as exc:
                metrics.LLM_ANSWERS_INVALID.inc()
                log.warning(
                    "model answer invalid", extra={"problem": str(exc), "try": validation_try}
                )
                continue
            return Answer(insight, int(totals[0]), int(totals[1]), float(totals[2]), int(totals[3]))
        raise ModelUnavailable("invalid_output", "the model's answer did not match the schema")

    async def _call(self, messages: list[Message], prompt_estimate: int, totals: list[Any]) -> str:
        """One answer's text, retrying transient failures; ModelUnavailable otherwise."""
        last_note = "the model did not answer"
        for attempt in range(self.settings.retries + 1):
            try:
                return await self._once(messages, prompt_estimate, totals)
            except Retry as retry:
                last_note = retry.note
                if attempt == self.settings.retries:
                    break
                delay = retry.delay_s
                if delay is None:
                    delay = min(BACKOFF_CAP_S, self.settings.backoff_s * 2**attempt) * (
                        0.75 + 0.5 * random.random()
                    )
                elif delay > self.settings.max_retry_after_s:
                    last_note = f"{retry.note}; asked to wait {delay:.0f} s"
                    break
                await asyncio.sleep(delay)  # backoff: there is nothing to await instead
        raise ModelUnavailable("model_error", last_note)

    async def _once(self, messages: list[Message], prompt_estimate: int, totals: list[Any]) -> str:
        assert self.client is not None
        if not self.breaker.allow():
            raise ModelUnavailable(
                "breaker_open",
                f"model circuit open after repeated failures; "
                f"retrying in {self.breaker.retry_in:.0f} s",
            )
        max_out = self.settings.max_output_tokens
        reservation = await self.budget.reserve(self.prices.cost(prompt_estimate, max_out))
        if reservation is None:
            self.breaker.abandon()
            raise ModelUnavailable("budget", "daily LLM budget reached")
        token_estimate = prompt_estimate + max_out
        try:
            waited = await self.limiter.acquire(
                [(self.requests, 1), (self.tokens, token_estimate)], self.settings.rate_wait_s
            )
        except ResourceExhausted:
            self.breaker.abandon()
            await self.budget.settle(reservation, 0.0)
            raise ModelUnavailable("rate_limit", "LLM rate limit: no capacity in time") from None
        except BaseException:
            self.breaker.abandon()
            await self.budget.settle(reservation, 0.0)
            raise
        metrics.RATE_LIMIT_WAIT.observe(waited)
        started = time.perf_counter()
        outcome = "cancelled"
        used: tuple[int, int] | None = None
        try:
            response = await self.client.chat.completions.create(
                model=self.settings.model,
                messages=cast(Any, messages),
                max_tokens=max_out,
                temperature=0.2,
                response_format=cast(Any, self._response_format()),
                timeout=self.settings.timeout_s,
            )
            outcome = "server_error"
            content, used = self._read(response, prompt_estimate)
            outcome = "ok"
        except Retry as retry:
            outcome = retry.outcome
            raise
        except Exception as exc:
            classified = classify(exc)
            if classified is None:
                raise
            outcome, failure = classified
            raise failure from None
        finally:
            if used is None and outcome == "cancelled":
                # The provider may bill a call cut short: keep the whole reservation.
                used = (prompt_estimate, max_out)
            self._record(outcome, time.perf_counter() - started)
            await self._settle(reservation, token_estimate, used or (0, 0), totals)
        return content

    def _record(self, outcome: str, elapsed_s: float) -> None:
        metrics.LLM_SECONDS.labels(outcome).observe(elapsed_s)
        metrics.LLM_REQUESTS.labels(outcome).inc()
        if outcome == "ok":
            self.breaker.success()
        elif outcome == "cancelled":
            self.breaker.abandon()
        else:
            self.breaker.failure()

    def _read(self, response: Any, prompt_estimate: int) -> tuple[str, tuple[int, int]]:
        """The answer's text and (prompt, completion) tokens of a completion."""
        if isinstance(response, str):  # a body that is not JSON at all
            raise Retry("server_error", "malformed answer from the model", None)
        try:
            choice = response.choices[0]
            content = choice.message.content
            usage = response.usage
            used = (
                (int(usage.prompt_tokens), int(usage.completion_tokens))
                if usage is not None
                # No usage reported: charge the estimate, the conservative choice.
                else (prompt_estimate, self.settings.max_output_tokens)
            )
        except (AttributeError, IndexError, TypeError, ValueError):
            raise Retry("server_error", "malformed answer from the model", None) from None
        if choice.finish_reason == "length":
            # A truncated answer cannot be valid JSON: the schema check will refuse it.
            log.warning("model answer truncated at max tokens")
        return content if isinstance(content, str) else "", used

    async def _settle(
        self, reservation: Any, token_estimate: int, used: tuple[int, int], totals: list[Any]
    ) -> None:
        prompt_tokens, completion_tokens = used
        cost = self.prices.cost(prompt_tokens, completion_tokens)
        totals[0] += prompt_tokens
        totals[1] += completion_tokens
        totals[2] += cost
        totals[3] += 1
        if prompt_tokens or completion_tokens:
            metrics.LLM_TOKENS.labels("prompt").inc(prompt_tokens)
            metrics.LLM_TOKENS.labels("completion").inc(completion_tokens)
            metrics.LLM_COST.inc(cost)
        await self.budget.settle(reservation, cost)
        await self.limiter.settle(self.tokens, prompt_tokens + completion_tokens - token_estimate)
