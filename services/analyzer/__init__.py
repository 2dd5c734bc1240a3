"""The analyzer: replicas that claim analysis jobs from the Redis priority queue and
publish a structured diagnosis (insight) for each."""
