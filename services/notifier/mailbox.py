"""A subscriber's bounded queue of live entries.

The hub puts without waiting; the subscriber takes whatever has piled up in one go, so
events that arrive together leave together (one frame in batch mode). When the box is
full the subscriber is too slow: the box drops what it holds, remembers the overflow
and wakes whoever watches `overflowed`, so the connection is cut at once even if its
sender is stuck in a write. Must never block the hub or grow past its capacity.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class TooSlow(Exception):
    """The subscriber fell too far behind; it must reconnect with its last id."""


class Mailbox(Generic[T]):
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.items: deque[T] = deque()
        self.overflowed = asyncio.Event()
        self._waiter: asyncio.Future[None] | None = None

    @property
    def idle(self) -> bool:
        """Empty, and its consumer is parked waiting: it has written all it took."""
        waiter = self._waiter
        return waiter is not None and not waiter.done() and not self.items

    def put(self, item: T) -> bool:
        """Add `item`; False (and the box is shut) when it was already full."""
        if self.overflowed.is_set():
            return False
        if len(self.items) >= self.capacity:
            self.items.clear()
            self.overflowed.set()
            self._wake()
            return False
        self.items.append(item)
        self._wake()
        return True

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def take(self, most: int) -> list[T]:
        """Wait for at least one item; return up to `most` in order. TooSlow after overflow."""
        while not self.items:
            if self.overflowed.is_set():
                raise TooSlow()
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        if self.overflowed.is_set():
            raise TooSlow()
        if len(self.items) <= most:
            taken = list(self.items)
            self.items.clear()
            return taken
        return [self.items.popleft() for _ in range(most)]
