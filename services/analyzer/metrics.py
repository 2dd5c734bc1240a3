"""The analyzer's Prometheus metrics."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

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
