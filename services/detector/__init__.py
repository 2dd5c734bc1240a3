"""The detector: a verdict for every reading, from rules and per-series state, with
anomalies grouped into episodes. Pure computation; no network call on the hot path."""
