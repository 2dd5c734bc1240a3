"""The analyzer: a quick insight for every alert within milliseconds (cache or built-in),
then replicas that claim analysis jobs from the Redis priority queue and publish the
model's structured diagnosis (cached by pattern, single-flight, rate-limited, within a
budget, behind a circuit breaker), and deep analyses of a device's history."""
