"""Vigil's benchmarks (`make bench`, `vigil bench`): every stage measured on loopback
with a private Redis, each figure beside a baseline measured in the same run."""
