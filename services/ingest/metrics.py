"""Ingest's Prometheus metrics."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

READINGS = Counter("vigil_ingest_readings_total", "Readings in applied batches.")
BATCHES = Counter(
    "vigil_ingest_batches_total",
    "Batches by outcome: applied, duplicate (resent, acked without effect).",
    ["result"],
)
REJECTED = Counter(
    "vigil_ingest_rejected_total",
    "Streams refused or ended for bad input, credentials or limits, by gRPC status.",
    ["code"],
)
LIMITED = Counter(
    "vigil_ingest_limit_total",
    "Limits applied, by limit (window, rate, streams, idle, message_size) and action "
    "(throttled: slowed down; refused: the stream was ended).",
    ["limit", "action"],
)
SEQUENCE = Counter(
    "vigil_ingest_sequence_total",
    "Batches whose seq did not follow the previous one of their stream: gap, regression.",
    ["kind"],
)
STREAMS = Gauge("vigil_ingest_streams", "Device streams open now.")
WINDOW = Gauge("vigil_ingest_flow_window", "In-flight window devices are told now (Flow).")
JOBS_ENQUEUED = Counter(
    "vigil_ingest_jobs_enqueued_total",
    "Analysis jobs added to vigil:queue, by severity.",
    ["severity"],
)
BATCH_SECONDS = Histogram(
    "vigil_ingest_batch_seconds",
    "Time from a batch's arrival to its ack (detector and Redis included).",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
CALL_ITEMS = Histogram(
    "vigil_ingest_coalesced_items",
    "Device batches per coalesced call, by stage (detect, commit).",
    ["stage"],
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
)
CALL_SECONDS = Histogram(
    "vigil_ingest_call_seconds",
    "Duration of one coalesced call, by stage (detect, commit).",
    ["stage"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
