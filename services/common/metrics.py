"""Prometheus plumbing every service shares: the /metrics server and gRPC server metrics.

gRPC metrics are named as go-grpc-prometheus names them, so existing dashboards work.
Labels are bounded: service and method names and status codes, never a device id.
Each service defines its own `vigil_<service>_*` metrics in its `metrics` module.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, start_http_server

GRPC_STARTED = Counter(
    "grpc_server_started_total",
    "RPCs started on the server.",
    ["grpc_type", "grpc_service", "grpc_method"],
)
GRPC_HANDLED = Counter(
    "grpc_server_handled_total",
    "RPCs completed on the server, by status code.",
    ["grpc_type", "grpc_service", "grpc_method", "grpc_code"],
)
GRPC_MSG_RECEIVED = Counter(
    "grpc_server_msg_received_total",
    "Stream messages received by the server.",
    ["grpc_type", "grpc_service", "grpc_method"],
)
GRPC_MSG_SENT = Counter(
    "grpc_server_msg_sent_total",
    "Stream messages sent by the server.",
    ["grpc_type", "grpc_service", "grpc_method"],
)
GRPC_HANDLING = Histogram(
    "grpc_server_handling_seconds",
    "Time from the start of an RPC to its status, unary and streaming.",
    ["grpc_type", "grpc_service", "grpc_method"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
BUILD_INFO = Gauge("vigil_build_info", "Always 1; labels say what runs.", ["service", "version"])
ERRORS = Counter(
    "vigil_errors_total",
    "Unexpected errors caught at a boundary (logged with a stack trace).",
    ["service", "where"],
)


def serve_metrics(host: str, port: int) -> int:
    """Start the /metrics HTTP server on a thread; returns the port it listens on."""
    server, _thread = start_http_server(port, addr=host)
    return int(server.server_port)


EVENTS_PUBLISHED = Counter(
    "vigil_events_published_total",
    "Events appended to the vigil:events stream by this process, by kind.",
    ["kind"],
)
