"""The detector's Prometheus metrics."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

READINGS = Counter("vigil_detector_readings_total", "Readings judged.")
VERDICTS = Counter(
    "vigil_detector_verdicts_total",
    "Anomalous verdicts, by severity.",
    ["severity"],
)
EPISODES = Counter(
    "vigil_detector_episode_changes_total",
    "Episodes opened, escalated and resolved.",
    ["change"],
)
SERIES = Gauge("vigil_detector_series", "Series (device, sensor) with state in memory.")
