"""Benchmarks: measured figures with their baselines, run on loopback with a private Redis."""
