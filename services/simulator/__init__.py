"""Simulated devices: a realistic device client (resend, flow control) and a fleet of
machines with occasional incidents, for the local stack, demos, tests and benchmarks."""
