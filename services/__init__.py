"""Vigil: real-time anomaly detection for sensor fleets, as gRPC microservices."""
