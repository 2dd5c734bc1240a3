"""The notifier's Prometheus metrics. No label carries a device id or a viewer name."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

WS_CLIENTS = Gauge("vigil_notifier_ws_clients", "WebSocket clients connected now.")
GRPC_SUBSCRIBERS = Gauge("vigil_notifier_grpc_subscribers", "gRPC Subscribe streams open now.")
EVENTS_READ = Counter("vigil_notifier_events_read_total", "Events read from vigil:events.")
BAD_ENTRIES = Counter(
    "vigil_notifier_bad_entries_total", "Stream entries skipped because they are not events."
)
DELIVERED = Counter(
    "vigil_notifier_events_delivered_total",
    "Events sent to subscribers, by transport.",
    ["transport"],
)
# Children looked up once: `labels()` takes a lock and a dict lookup per call.
WS_DELIVERED = DELIVERED.labels("ws")
GRPC_DELIVERED = DELIVERED.labels("grpc")
DELIVERY_LAG = Histogram(
    "vigil_notifier_delivery_lag_seconds",
    "From an event's stream id time to its frame being written to a WebSocket client.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
DROPPED_CLIENTS = Counter(
    "vigil_notifier_slow_clients_total", "Subscribers cut off because their queue overflowed."
)
WS_REJECTED = Counter(
    "vigil_notifier_ws_rejected_total",
    "WebSocket connections or frames refused, by reason.",
    ["reason"],
)
API_REQUESTS = Counter(
    "vigil_notifier_api_requests_total",
    "HTTP API requests answered, by route and status code.",
    ["route", "code"],
)
RATE_LIMITED = Counter(
    "vigil_notifier_rate_limited_total",
    "HTTP API requests refused with 429, by bucket.",
    ["bucket"],
)
ACKS = Counter(
    "vigil_notifier_acks_total", "Acknowledgements published, by false alarm or not.", ["kind"]
)
