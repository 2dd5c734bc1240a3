"""The detector's Prometheus metrics."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

READINGS = Counter("vigil_detector_readings_total", "Readings judged.")
BATCHES = Counter(
    "vigil_detector_batches_total",
    "Device batches by outcome: judged, or duplicate (answered from the results cache).",
    ["result"],
)
SEQUENCE = Counter(
    "vigil_detector_sequence_total",
    "Device batches whose seq did not follow the device's last one: gap, regression.",
    ["kind"],
)
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
SILENCE_DROPPED = Counter(
    "vigil_detector_silence_dropped_total",
    "Silence alert changes dropped unpublished: Redis was away for too long.",
)
SILENCE_ALERTS = Counter(
    "vigil_detector_silence_alerts_total",
    "Alerts the sweep raised for silence, by kind: offline (device), missing (sensor).",
    ["kind"],
)
SERIES = Gauge("vigil_detector_series", "Series (device, sensor) with state in memory.")
DEVICES = Gauge("vigil_detector_devices", "Devices with state in memory.")
DETECT_SECONDS = Histogram(
    "vigil_detector_detect_seconds",
    "Time to judge one Detect request.",
    buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1),
)
RULE_RELOADS = Counter(
    "vigil_detector_rule_reloads_total",
    "Rules file changes seen, by result: applied, rejected (the old rules stay).",
    ["result"],
)
SNAPSHOTS = Counter(
    "vigil_detector_snapshot_devices_total",
    "Device states written to or restored from vigil:state:{shard}, by op: saved, "
    "restored, invalid.",
    ["op"],
)
SNAPSHOT_SECONDS = Histogram(
    "vigil_detector_snapshot_seconds",
    "Time to write one snapshot of the changed devices.",
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10),
)
FEEDBACK = Counter(
    "vigil_detector_feedback_total",
    "False-alarm acks read from vigil:events, by result: applied (this shard holds the "
    "series), elsewhere.",
    ["result"],
)
