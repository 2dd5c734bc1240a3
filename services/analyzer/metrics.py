"""The analyzer's Prometheus metrics, all documented in the README's metrics table.

Labels are bounded (priority, source, level, outcome...), never a device or job id.
Counters of shared events (shed jobs, dead letters) are counted by exactly one replica,
so summing over replicas is right; gauges of shared state (queue depth) are the same on
every replica (use max).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

FAST = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1)
SLOW = (0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800)

JOBS_CLAIMED = Counter("vigil_analyzer_jobs_claimed_total", "Jobs claimed from the queue.")
JOBS_COMPLETED = Counter(
    "vigil_analyzer_jobs_completed_total",
    "Jobs completed, by the source of their insight (model, cache, builtin).",
    ["source"],
)
JOBS_LOST_LEASE = Counter(
    "vigil_analyzer_jobs_lease_lost_total",
    "Jobs finished after their lease had expired (another replica owns them now).",
)
JOB_FAILURES = Counter("vigil_analyzer_job_failures_total", "Job attempts that raised.")
ANALYSIS_SECONDS = Histogram(
    "vigil_analyzer_analysis_seconds",
    "Time to produce one insight, by source.",
    ["source"],
    buckets=(0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60),
)

QUEUE_DEPTH = Gauge(
    "vigil_analyzer_queue_depth",
    "Jobs waiting in the queue, by level (priority after aging).",
    ["priority"],
)
QUEUE_WAIT = Histogram(
    "vigil_analyzer_queue_wait_seconds",
    "Time from enqueue to claim, by the job's priority.",
    ["priority"],
    buckets=SLOW,
)
JOB_ATTEMPTS = Histogram(
    "vigil_analyzer_job_attempts",
    "Claims a job needed until it completed.",
    buckets=(1, 2, 3, 5, 10, 20),
)
LEASES_EXPIRED = Counter(
    "vigil_analyzer_leases_expired_total",
    "Expired leases returned to the queue by this replica's reaper.",
)
JOBS_PROMOTED = Counter(
    "vigil_analyzer_jobs_aged_total", "Waiting jobs raised one or more levels by aging."
)
DEAD_LETTERS = Counter(
    "vigil_analyzer_dead_letters_total", "Jobs moved to the dead letters (vigil:queue:dead)."
)
SHED_JOBS = Counter(
    "vigil_analyzer_shed_jobs_total",
    "Jobs shed by the queue's bound, by priority (counted by one replica each).",
    ["priority"],
)

QUICK_INSIGHTS = Counter(
    "vigil_analyzer_quick_insights_total",
    "Quick insights published right after their alert, by source (cache, builtin).",
    ["source"],
)
QUICK_SECONDS = Histogram(
    "vigil_analyzer_quick_insight_seconds",
    "From reading an alert event to publishing its quick insight.",
    buckets=FAST,
)
CACHE_REQUESTS = Counter(
    "vigil_analyzer_cache_requests_total",
    "Insight cache lookups, by level (l1, l2) and result (hit, miss).",
    ["level", "result"],
)
CACHE_SECONDS = Histogram(
    "vigil_analyzer_cache_lookup_seconds",
    "Time of a cache lookup, by the level that answered (l1, l2, miss).",
    ["level"],
    buckets=FAST,
)
SINGLE_FLIGHT_JOINS = Counter(
    "vigil_analyzer_single_flight_joins_total",
    "Requests that waited for another's model call instead of calling, by scope "
    "(local: same process, remote: another replica).",
    ["scope"],
)
SINGLE_FLIGHT_TIMEOUTS = Counter(
    "vigil_analyzer_single_flight_timeouts_total",
    "Waits for another replica's model answer that timed out.",
)

RATE_LIMIT_WAIT = Histogram(
    "vigil_analyzer_rate_limit_wait_seconds",
    "Time spent waiting for the shared model rate limits before a call.",
    buckets=(0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
LLM_REQUESTS = Counter(
    "vigil_analyzer_llm_requests_total",
    "HTTP calls to the model, by outcome (ok, rate_limited, server_error, timeout, "
    "connection, refused, cancelled).",
    ["outcome"],
)
LLM_ANSWERS_INVALID = Counter(
    "vigil_analyzer_llm_invalid_answers_total",
    "Model answers that failed the insight schema (each is asked once more).",
)
LLM_SECONDS = Histogram(
    "vigil_analyzer_llm_request_seconds",
    "Latency of one model call, by outcome.",
    ["outcome"],
    buckets=SLOW,
)
LLM_TOKENS = Counter(
    "vigil_analyzer_llm_tokens_total",
    "Tokens billed by the model, by kind (prompt, completion).",
    ["kind"],
)
LLM_COST = Counter(
    "vigil_analyzer_llm_cost_total", "Model spend, in the configured currency (VIGIL_LLM_CURRENCY)."
)
FALLBACKS = Counter(
    "vigil_analyzer_fallbacks_total",
    "Insights the built-in analyzer gave instead of the model, by reason (breaker_open, "
    "budget, rate_limit, model_error, invalid_output, single_flight_timeout).",
    ["reason"],
)
BREAKER_STATE = Gauge(
    "vigil_analyzer_breaker_state", "The model circuit breaker: 0 closed, 1 half-open, 2 open."
)
BREAKER_TRANSITIONS = Counter(
    "vigil_analyzer_breaker_transitions_total",
    "Circuit breaker state changes, by new state (closed, half_open, open).",
    ["to"],
)
ANALYSES = Counter(
    "vigil_analyzer_analyses_total",
    "Deep analyses finished, by status (done, failed).",
    ["status"],
)

# Every series of a bounded label set exists from the start (at 0), so rates and alerts
# work before the first event of a kind.
for _priority in ("info", "warning", "critical"):
    QUEUE_DEPTH.labels(_priority)
    SHED_JOBS.labels(_priority)
for _level in ("l1", "l2"):
    for _result in ("hit", "miss"):
        CACHE_REQUESTS.labels(_level, _result)
for _kind in ("prompt", "completion"):
    LLM_TOKENS.labels(_kind)
for _reason in (
    "breaker_open",
    "budget",
    "rate_limit",
    "model_error",
    "invalid_output",
    "single_flight_timeout",
):
    FALLBACKS.labels(_reason)
for _scope in ("local", "remote"):
    SINGLE_FLIGHT_JOINS.labels(_scope)
for _state in ("closed", "half_open", "open"):
    BREAKER_TRANSITIONS.labels(_state)
