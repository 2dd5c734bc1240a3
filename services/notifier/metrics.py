"""The notifier's Prometheus metrics."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

WS_CLIENTS = Gauge("vigil_notifier_ws_clients", "WebSocket clients connected now.")
GRPC_SUBSCRIBERS = Gauge("vigil_notifier_grpc_subscribers", "gRPC Subscribe streams open now.")
EVENTS_READ = Counter("vigil_notifier_events_read_total", "Events read from vigil:events.")
DELIVERED = Counter(
    "vigil_notifier_events_delivered_total",
    "Events sent to subscribers, by transport.",
    ["transport"],
)
DROPPED_CLIENTS = Counter(
    "vigil_notifier_slow_clients_total", "Subscribers cut off because their queue overflowed."
)
WS_REJECTED = Counter(
    "vigil_notifier_ws_rejected_total",
    "WebSocket connections or frames refused, by reason.",
    ["reason"],
)
