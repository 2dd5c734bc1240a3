"""Single-flight: concurrent requests for one cache key make one model call, across
replicas.

In a process, callers of one key share one future. Across replicas, the caller that
takes the Redis lock `vigil:cachelock:{digest}` (SET NX with a lease it refreshes while
it works) computes; the others poll the L2 cache until the answer appears, the lock
goes away (the owner finished without a cacheable answer, or died: then one of them
takes over), or their wait times out. Polling is bounded (every `poll_s`), and only
replicas that missed the cache for the same key ever poll. This module knows nothing of
models or insights: it runs the `lookup` and `compute` it is given.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from redis.asyncio import Redis

from services.analyzer import metrics
from services.common import keys
from services.common.cancel import cancel_and_wait
from services.common.scripts import Scripts

log = logging.getLogger(__name__)
T = TypeVar("T")


class WaitTimedOut(Exception):
    """Another replica kept computing past the wait limit."""


class SingleFlight(Generic[T]):
    def __init__(
        self,
        redis: Redis,
        scripts: Scripts,
        lock_s: float,
        wait_s: float,
        poll_s: float = 0.05,
    ) -> None:
        self.redis = redis
        self.scripts = scripts
        self.lock_ms = max(100, int(lock_s * 1000))
        self.wait_s = wait_s
        self.poll_s = poll_s
        self._local: dict[str, asyncio.Future[tuple[T, bool]]] = {}

    async def run(
        self,
        digest: str,
        lookup: Callable[[], Awaitable[T | None]],
        compute: Callable[[], Awaitable[T]],
    ) -> tuple[T, bool]:
        """The value for `digest`, and whether this call computed it (False: it was
        found, or awaited from whoever computed it).

        Raises WaitTimedOut when another replica's computation outlasts the wait.
        """
        shared = self._local.get(digest)
        if shared is not None:
            metrics.SINGLE_FLIGHT_JOINS.labels("local").inc()
            value, _led = await asyncio.shield(shared)
            return value, False
        future: asyncio.Future[tuple[T, bool]] = asyncio.get_running_loop().create_future()
        # Mark the outcome retrieved, so a failure nobody joined is not reported twice.
        future.add_done_callback(lambda f: f.cancelled() or f.exception())
        self._local[digest] = future
        try:
            value, led = await self._lead_or_wait(digest, lookup, compute)
        except BaseException as exc:
            future.set_exception(exc if isinstance(exc, Exception) else WaitTimedOut())
            raise
        finally:
            del self._local[digest]
        future.set_result((value, led))
        return value, led

    async def _lead_or_wait(
        self,
        digest: str,
        lookup: Callable[[], Awaitable[T | None]],
        compute: Callable[[], Awaitable[T]],
    ) -> tuple[T, bool]:
        lock = keys.cache_lock(digest)
        deadline = time.monotonic() + self.wait_s
        joined = False
        while True:
            token = secrets.token_hex(8)
            if await self.redis.set(lock, token, nx=True, px=self.lock_ms):
                return await self._lead(lock, token, lookup, compute)
            if not joined:
                joined = True
                metrics.SINGLE_FLIGHT_JOINS.labels("remote").inc()
            while True:
                found = await lookup()
                if found is not None:
                    return found, False
                if not await self.redis.exists(lock):
                    break  # the owner is gone without an answer: try to lead
                if time.monotonic() >= deadline:
                    metrics.SINGLE_FLIGHT_TIMEOUTS.inc()
                    raise WaitTimedOut(digest)
                await asyncio.sleep(self.poll_s)  # polling Redis: there is no event here

    async def _lead(
        self,
        lock: str,
        token: str,
        lookup: Callable[[], Awaitable[T | None]],
        compute: Callable[[], Awaitable[T]],
    ) -> tuple[T, bool]:
        refresher = asyncio.create_task(self._refresh(lock, token), name="single-flight-lease")
        try:
            # Someone may have finished between our miss and our lock.
            found = await lookup()
            return (found, False) if found is not None else (await compute(), True)
        finally:
            # Not a bare cancel(): a dropped cancellation would leave this call waiting
            # on the refresher forever (see services.common.cancel).
            await cancel_and_wait([refresher])
            with contextlib.suppress(asyncio.CancelledError):
                await refresher
            await self.scripts.lock_release(keys=[lock], args=[token])

    async def _refresh(self, lock: str, token: str) -> None:
        while True:
            await asyncio.sleep(self.lock_ms / 3000)
            try:
                if not await self.scripts.lock_refresh(keys=[lock], args=[token, self.lock_ms]):
                    log.warning("single-flight lock lost", extra={"lock": lock})
                    return
            except Exception:  # a Redis hiccup: the next refresh may work
                log.exception("single-flight lock refresh failed")
