"""Every Redis key Vigil uses, built here and nowhere else.

Shared state lives only in Redis (see DESIGN.md). Lua scripts that must reach keys
they only learn while running (job hashes) get the prefix from here as an argument.
"""

from __future__ import annotations

PREFIX = "vigil:"

EVENTS = PREFIX + "events"  # stream, capped: what dashboards see
QUEUE = PREFIX + "queue"  # sorted set of job ids; score = priority * 10^12 - enqueue ms
QUEUE_LEASES = PREFIX + "queue:leases"  # sorted set of job ids by lease deadline (ms)
QUEUE_DEAD = PREFIX + "queue:dead"  # list of dead-lettered job ids, capped
QUEUE_NOTIFY = PREFIX + "queue:notify"  # pub/sub channel: "a job was enqueued"
JOB_PREFIX = PREFIX + "jobs:"  # hash per job: body, priority, attempts, state, ...
CACHE_PREFIX = PREFIX + "cache:"
RATE_PREFIX = PREFIX + "rl:"
STATE_PREFIX = PREFIX + "state:"
HISTORY_PREFIX = PREFIX + "history:"
SEEN_PREFIX = PREFIX + "ingest:seen:"  # sorted set per device: batch seqs already applied
# hash: device id -> JSON {"device_id", "labels", "status": "online"|"offline",
# "last_seen": RFC 3339, "connected_at": RFC 3339}; written by ingest, read by dashboards.
DEVICES = PREFIX + "devices"
# The queue's own keys. lib/enqueue.lua derives them from the queue key it is given
# (callers pass only that), so these names and that library must stay in step.
QUEUE_CONFIG = QUEUE + ":config"  # hash: max_depth (the bound), written by the analyzer
QUEUE_SHED = QUEUE + ":shed"  # stream, capped: jobs shed by the bound (id, priority, body)
QUEUE_EPISODE_PREFIX = QUEUE + ":episode:"  # string per episode: its queued/running job id
QUICK_PREFIX = PREFIX + "quick:"  # string per alert job, expires: its quick insight's origin
ANALYSIS_PREFIX = PREFIX + "analysis:"  # hash per deep-analysis ticket, expires
SPEND_PREFIX = PREFIX + "spend:"  # string float per UTC day, expires: LLM spend
CACHE_LOCK_PREFIX = PREFIX + "cachelock:"  # string per pattern, expires: single-flight owner


def job(job_id: str) -> str:
    return JOB_PREFIX + job_id


def cache(digest: str) -> str:
    return CACHE_PREFIX + digest


def rate_limit(name: str) -> str:
    return RATE_PREFIX + name


def detector_state(shard: str) -> str:
    return STATE_PREFIX + shard


def history(device_id: str) -> str:
    """Stream, capped: one entry per batch, field `readings` = JSON [[sensor, unix s, value]]."""
    return HISTORY_PREFIX + device_id


def seen(device_id: str) -> str:
    return SEEN_PREFIX + device_id


def queue_episode(episode_id: str) -> str:
    return QUEUE_EPISODE_PREFIX + episode_id


def quick_insight(job_id: str) -> str:
    return QUICK_PREFIX + job_id


def analysis(ticket: str) -> str:
    return ANALYSIS_PREFIX + ticket


def spend(day: str) -> str:
    """`day` is the UTC date, YYYY-MM-DD."""
    return SPEND_PREFIX + day


def cache_lock(digest: str) -> str:
    return CACHE_LOCK_PREFIX + digest


# string per second, expires: readings ingest applied in that second (dashboards sum 10 s)
READINGS_COUNTER_PREFIX = PREFIX + "stats:readings:"


def readings_counter(unix_second: int) -> str:
    return READINGS_COUNTER_PREFIX + str(unix_second)
