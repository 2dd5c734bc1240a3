"""The analyzer's settings, read once from the environment.

Every variable is documented in the README's configuration table. Without
`OPENAI_API_KEY` the model is off and the built-in analyzer answers every job.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from services.common.events import DEFAULT_EVENTS_MAXLEN
from services.common.settings import CommonSettings, Env, Secret


@dataclass(frozen=True, slots=True)
class LlmSettings:
    #: OPENAI_API_KEY: the model is used only when it is set.
    api_key: Secret
    #: OPENAI_BASE_URL: any OpenAI-compatible endpoint (empty: OpenAI's own).
    base_url: str | None
    #: VIGIL_LLM_MODEL
    model: str
    #: VIGIL_LLM_TIMEOUT_SECONDS: deadline of one HTTP call.
    timeout_s: float
    #: VIGIL_LLM_RETRIES: further tries after a 429, a 5xx, a timeout or a lost connection.
    retries: int
    #: VIGIL_LLM_MAX_RETRY_AFTER_SECONDS: a longer Retry-After gives up at once.
    max_retry_after_s: float
    #: VIGIL_LLM_BACKOFF_SECONDS: first wait between tries without Retry-After (doubles).
    backoff_s: float
    #: VIGIL_LLM_MAX_OUTPUT_TOKENS
    max_output_tokens: int
    #: VIGIL_LLM_RESPONSE_FORMAT: json_schema (strict schema) or json_object.
    response_format: str
    #: VIGIL_LLM_REQUESTS_PER_MINUTE, VIGIL_LLM_TOKENS_PER_MINUTE: shared by all replicas.
    requests_per_minute: float
    tokens_per_minute: float
    #: VIGIL_LLM_BURST_SECONDS: bucket depth, in seconds of the limit.
    burst_s: float
    #: VIGIL_LLM_RATE_WAIT_SECONDS: longest wait for the rate limiter before falling back.
    rate_wait_s: float
    #: VIGIL_LLM_DAILY_BUDGET: spend per UTC day, in VIGIL_LLM_CURRENCY.
    daily_budget: float
    #: VIGIL_LLM_PRICE_INPUT_PER_1K, VIGIL_LLM_PRICE_OUTPUT_PER_1K: per 1,000 tokens.
    price_input_per_1k: float
    price_output_per_1k: float
    #: VIGIL_LLM_CURRENCY: shown with costs.
    currency: str
    #: VIGIL_LLM_BREAKER_FAILURES: consecutive failures that open the circuit.
    breaker_failures: int
    #: VIGIL_LLM_BREAKER_COOLDOWN_SECONDS: open time before one probe call.
    breaker_cooldown_s: float

    @property
    def enabled(self) -> bool:
        return bool(self.api_key)


@dataclass(frozen=True, slots=True)
class CacheSettings:
    #: VIGIL_CACHE_L1_SIZE: insights kept in process (0 = no L1).
    l1_size: int
    #: VIGIL_CACHE_TTL_{INFO,WARNING,CRITICAL}_SECONDS, by severity level 1..3.
    ttl_s: dict[int, float]
    #: VIGIL_CACHE_LABEL_KEYS: device label keys in the pattern (empty: all labels).
    label_keys: tuple[str, ...]
    #: VIGIL_SINGLE_FLIGHT_LOCK_SECONDS: lock lease, refreshed while the call runs.
    lock_s: float
    #: VIGIL_SINGLE_FLIGHT_WAIT_SECONDS: how long a replica waits for another's answer.
    wait_s: float


@dataclass(frozen=True, slots=True)
class AnalysisSettings:
    #: VIGIL_ANALYSIS_DEFAULT_WINDOW_SECONDS: window when the request names none.
    default_window_s: float
    #: VIGIL_ANALYSIS_MAX_WINDOW_SECONDS
    max_window_s: float
    #: VIGIL_ANALYSIS_MAX_ENTRIES: history entries (batches) read per analysis.
    max_entries: int
    #: VIGIL_ANALYSIS_TTL_SECONDS: how long a ticket can be looked up.
    ticket_ttl_s: int


@dataclass(frozen=True, slots=True)
class AnalyzerSettings:
    common: CommonSettings
    #: VIGIL_ANALYZER_CONCURRENCY: jobs one replica works on at once (at most 32: each
    #: may hold two Redis connections and a client pool has 100; scale with replicas).
    concurrency: int
    #: VIGIL_QUEUE_LEASE_SECONDS: how long a claimed job is reserved (heartbeats extend it).
    lease_s: float
    #: VIGIL_QUEUE_MAX_ATTEMPTS: failed attempts before a job goes to the dead letters.
    max_attempts: int
    #: VIGIL_QUEUE_MAX_DEPTH: the queue's bound (0 = unbounded).
    max_depth: int
    #: VIGIL_QUEUE_AGING_SECONDS: waiting this long raises a job one level (0 = never).
    aging_s: float
    #: VIGIL_QUEUE_REAP_SECONDS: period of the reaper (expired leases, aging, metrics).
    reap_s: float
    #: VIGIL_EVENTS_MAXLEN: approximate cap of the vigil:events stream.
    events_maxlen: int
    llm: LlmSettings
    cache: CacheSettings
    analysis: AnalysisSettings

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> AnalyzerSettings:
        env = Env(environ)
        return cls(
            common=CommonSettings.from_env(environ, "analyzer", grpc_port=50053, metrics_port=9103),
            concurrency=env.integer("VIGIL_ANALYZER_CONCURRENCY", 4, lo=1, hi=32),
            lease_s=env.number("VIGIL_QUEUE_LEASE_SECONDS", 60.0, lo=0.1, hi=3600),
            max_attempts=env.integer("VIGIL_QUEUE_MAX_ATTEMPTS", 5, lo=1, hi=100),
            max_depth=env.integer("VIGIL_QUEUE_MAX_DEPTH", 10_000, lo=0, hi=10_000_000),
            aging_s=env.number("VIGIL_QUEUE_AGING_SECONDS", 300.0, lo=0, hi=30 * 86_400),
            reap_s=env.number("VIGIL_QUEUE_REAP_SECONDS", 1.0, lo=0.05, hi=60),
            events_maxlen=env.integer("VIGIL_EVENTS_MAXLEN", DEFAULT_EVENTS_MAXLEN, lo=100),
            llm=_llm(env),
            cache=_cache(env),
            analysis=_analysis(env),
        )


def _llm(env: Env) -> LlmSettings:
    return LlmSettings(
        api_key=env.secret("OPENAI_API_KEY"),
        base_url=env.raw("OPENAI_BASE_URL"),
        model=env.text("VIGIL_LLM_MODEL", "gpt-4o-mini"),
        timeout_s=env.number("VIGIL_LLM_TIMEOUT_SECONDS", 20.0, lo=0.1, hi=600),
        retries=env.integer("VIGIL_LLM_RETRIES", 2, lo=0, hi=10),
        max_retry_after_s=env.number("VIGIL_LLM_MAX_RETRY_AFTER_SECONDS", 30.0, lo=0, hi=3600),
        backoff_s=env.number("VIGIL_LLM_BACKOFF_SECONDS", 0.5, lo=0, hi=60),
        max_output_tokens=env.integer("VIGIL_LLM_MAX_OUTPUT_TOKENS", 500, lo=50, hi=32_000),
        response_format=env.choice(
            "VIGIL_LLM_RESPONSE_FORMAT", "json_schema", ("json_schema", "json_object")
        ),
        requests_per_minute=env.number("VIGIL_LLM_REQUESTS_PER_MINUTE", 60.0, lo=0.01),
        tokens_per_minute=env.number("VIGIL_LLM_TOKENS_PER_MINUTE", 100_000.0, lo=1),
        burst_s=env.number("VIGIL_LLM_BURST_SECONDS", 1.0, lo=0.001, hi=60),
        rate_wait_s=env.number("VIGIL_LLM_RATE_WAIT_SECONDS", 60.0, lo=0, hi=3600),
        daily_budget=env.number("VIGIL_LLM_DAILY_BUDGET", 5.0, lo=0),
        price_input_per_1k=env.number("VIGIL_LLM_PRICE_INPUT_PER_1K", 0.00015, lo=0),
        price_output_per_1k=env.number("VIGIL_LLM_PRICE_OUTPUT_PER_1K", 0.0006, lo=0),
        currency=env.text("VIGIL_LLM_CURRENCY", "USD"),
        breaker_failures=env.integer("VIGIL_LLM_BREAKER_FAILURES", 5, lo=1, hi=1000),
        breaker_cooldown_s=env.number("VIGIL_LLM_BREAKER_COOLDOWN_SECONDS", 30.0, lo=0.01),
    )


def _cache(env: Env) -> CacheSettings:
    return CacheSettings(
        l1_size=env.integer("VIGIL_CACHE_L1_SIZE", 1024, lo=0, hi=1_000_000),
        ttl_s={
            1: env.number("VIGIL_CACHE_TTL_INFO_SECONDS", 3600.0, lo=1),
            2: env.number("VIGIL_CACHE_TTL_WARNING_SECONDS", 1800.0, lo=1),
            3: env.number("VIGIL_CACHE_TTL_CRITICAL_SECONDS", 300.0, lo=1),
        },
        label_keys=env.items("VIGIL_CACHE_LABEL_KEYS", ()),
        lock_s=env.number("VIGIL_SINGLE_FLIGHT_LOCK_SECONDS", 10.0, lo=0.1, hi=600),
        wait_s=env.number("VIGIL_SINGLE_FLIGHT_WAIT_SECONDS", 60.0, lo=0, hi=3600),
    )


def _analysis(env: Env) -> AnalysisSettings:
    max_window = env.number("VIGIL_ANALYSIS_MAX_WINDOW_SECONDS", 86_400.0, lo=60, hi=30 * 86_400)
    return AnalysisSettings(
        default_window_s=env.number(
            "VIGIL_ANALYSIS_DEFAULT_WINDOW_SECONDS", min(3600.0, max_window), lo=60, hi=max_window
        ),
        max_window_s=max_window,
        max_entries=env.integer("VIGIL_ANALYSIS_MAX_ENTRIES", 5000, lo=1, hi=1_000_000),
        ticket_ttl_s=env.integer("VIGIL_ANALYSIS_TTL_SECONDS", 86_400, lo=60, hi=30 * 86_400),
    )
