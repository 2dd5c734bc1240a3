"""The events dashboards see, and how they sit in the `vigil:events` stream.

An event is a JSON object with at least `kind`, `device_id`, `severity` ("info",
"warning", "critical" or null) and `time` (RFC 3339). In the stream each entry has the
fields `kind`, `device`, `sev` (0-3, for filtering without parsing) and `data` (the
JSON). Every string in an event is data to be shown as text, never markup.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, cast

from redis.asyncio import Redis

from services.common import keys

SEVERITY_NAMES = {0: None, 1: "info", 2: "warning", 3: "critical"}
SEVERITY_BY_NAME = {"info": 1, "warning": 2, "critical": 3}
DEFAULT_EVENTS_MAXLEN = 100_000

Event = dict[str, Any]


def severity_name(level: int) -> str | None:
    return SEVERITY_NAMES.get(level)


def rfc3339(seconds: float) -> str:
    """`2026-11-25T12:00:00.123Z` for a Unix time in seconds."""
    moment = datetime.fromtimestamp(seconds, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def stream_fields(event: Event) -> dict[str, str]:
    """The stream entry for `event`."""
    return {
        "kind": str(event["kind"]),
        "device": str(event.get("device_id") or ""),
        "sev": str(SEVERITY_BY_NAME.get(str(event.get("severity")), 0)),
        "data": json.dumps(event, separators=(",", ":"), ensure_ascii=False),
    }


def decode(fields: dict[str, str]) -> Event:
    """The event of a stream entry."""
    event: Event = json.loads(fields["data"])
    return event


async def publish(redis: Redis, event: Event, maxlen: int = DEFAULT_EVENTS_MAXLEN) -> str:
    """Append `event` to the stream (capped near `maxlen`); returns its stream id."""
    fields: dict[Any, Any] = stream_fields(event)
    entry_id = await redis.xadd(keys.EVENTS, fields, maxlen=maxlen, approximate=True)
    return str(entry_id)


Entry = tuple[str, dict[str, str]]


async def entries_between(redis: Redis, start: str, end: str, count: int) -> list[Entry]:
    """Stream entries with ids in [start, end] ("(" before an id excludes it)."""
    return cast(list[Entry], await redis.xrange(keys.EVENTS, min=start, max=end, count=count))


async def newest_id(redis: Redis) -> str | None:
    newest = cast(list[Entry], await redis.xrevrange(keys.EVENTS, count=1))
    return newest[0][0] if newest else None


async def oldest_id(redis: Redis) -> str | None:
    oldest = cast(list[Entry], await redis.xrange(keys.EVENTS, count=1))
    return oldest[0][0] if oldest else None


async def read_after(redis: Redis, after: str, count: int, block_ms: int) -> list[Entry]:
    """Entries after `after`, waiting up to `block_ms` for the first one."""
    reply = cast(
        list[tuple[str, list[Entry]]] | None,
        await redis.xread({keys.EVENTS: after}, count=count, block=block_ms),
    )
    return [entry for _stream, entries in reply or () for entry in entries]


def stream_id_key(entry_id: str) -> tuple[int, int]:
    """Stream ids as comparable tuples ("1700000000000-3" -> (1700000000000, 3))."""
    millis, _, seq = entry_id.partition("-")
    return int(millis), int(seq or 0)
