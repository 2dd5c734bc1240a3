"""Test support: real processes, real servers and real clients on loopback."""
