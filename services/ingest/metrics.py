"""Ingest's Prometheus metrics."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

READINGS = Counter("vigil_ingest_readings_total", "Readings received in valid batches.")
BATCHES = Counter(
    "vigil_ingest_batches_total",
    "Batches by outcome: applied, duplicate (resent, acked without effect).",
    ["result"],
)
REJECTED = Counter(
    "vigil_ingest_rejected_total",
    "Streams refused or ended for bad input or credentials, by gRPC status.",
    ["code"],
)
STREAMS = Gauge("vigil_ingest_streams", "Device streams open now.")
JOBS_ENQUEUED = Counter(
    "vigil_ingest_jobs_enqueued_total",
    "Analysis jobs added to vigil:queue, by severity.",
    ["severity"],
)
