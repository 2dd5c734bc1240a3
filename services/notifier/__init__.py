"""The notifier: fans the `vigil:events` stream out to WebSocket dashboards and gRPC
subscribers, and serves the dashboard page."""
