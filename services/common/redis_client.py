"""The one way services open a Redis connection.

Every command has a deadline (socket timeouts) and connection errors are retried with
capped exponential backoff, so a Redis restart costs a pause, not a crash. Commands
beyond the pool's connections wait for a free one rather than fail. The retry
policy must be the asyncio one: the synchronous `redis.retry.Retry` given to the asyncio
client returns the command's coroutine without awaiting it, so no error is ever retried
(and its backoff would block the event loop).
"""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from services.common.settings import Secret

#: Connections a client opens at most. More concurrent commands wait for a free one
#: (up to the command timeout): the default pool would fail them at once with "Too many
#: connections", e.g. a thousand devices saying Hello or goodbye together.
MAX_CONNECTIONS = 100


def connect(url: Secret | str, *, timeout_s: float = 5.0, retries: int = 6) -> Redis:
    """A client for `url` that decodes replies to str and retries lost connections."""
    raw = url.reveal() if isinstance(url, Secret) else url
    pool = BlockingConnectionPool.from_url(
        raw,
        max_connections=MAX_CONNECTIONS,
        timeout=timeout_s,
        decode_responses=True,
        socket_timeout=timeout_s,
        socket_connect_timeout=min(timeout_s, 2.0),
        retry=Retry(ExponentialBackoff(cap=2.0, base=0.05), retries),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
        health_check_interval=15,
        client_name=None,
    )
    client = Redis(connection_pool=pool)
    client.auto_close_connection_pool = True  # aclose() closes the pool too
    return client
