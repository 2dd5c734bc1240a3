"""What a subscriber missed: the entries of `vigil:events` in (after, upto], read from
the stream itself, page by page, filtered.

Each page is read in one transaction with the stream's oldest id. If the oldest id is
past the cursor, entries after the cursor may have been trimmed before they were
read: `Lost` is raised and the subscriber must start over from current state. The
check is conservative (it may say Lost when nothing was trimmed after the cursor, never
the reverse). Must never yield an entry twice or out of order.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from redis.asyncio import Redis

from services.common import keys
from services.common.events import stream_id_key
from services.notifier.entry import BadEntry, Entry, parse

PAGE = 500


class Lost(Exception):
    """Entries after the requested id may have been trimmed from the stream."""


async def missed(
    redis: Redis, after: str, upto: str, accepts: Callable[[Entry], bool]
) -> AsyncIterator[list[Entry]]:
    """Pages of the accepted entries with ids in (after, upto], in id order."""
    cursor = after
    while stream_id_key(cursor) < stream_id_key(upto):
        async with redis.pipeline(transaction=True) as pipe:
            pipe.xrange(keys.EVENTS, min=f"({cursor}", max=upto, count=PAGE)
            pipe.xrange(keys.EVENTS, count=1)
            page, oldest = await pipe.execute()
        if not oldest or stream_id_key(oldest[0][0]) > stream_id_key(cursor):
            raise Lost()
        batch: list[Entry] = []
        for entry_id, fields in page:
            try:
                entry, _ = parse(entry_id, fields)
            except BadEntry:
                continue  # counted when the hub read it live
            if accepts(entry):
                batch.append(entry)
        if batch:
            yield batch
        if len(page) < PAGE:
            return
        cursor = page[-1][0]
