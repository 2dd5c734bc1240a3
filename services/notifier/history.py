"""Sparkline data: a device's recent readings from `vigil:history:{device}`, reduced on
the server to a fixed number of points per sensor.

Each history entry is one batch, field `readings` = JSON [[sensor, unix s, value], ...].
The read is bounded (newest entries first, at most MAX_ENTRIES), malformed entries are
skipped, and each sensor's window is cut into `points` equal buckets reported as
[bucket middle (unix s), mean, min, max]. `downsample` is a plain function; must never
return more than `points` points per sensor.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from typing import cast

from redis.asyncio import Redis

from services.common import keys

MAX_ENTRIES = 5000
Point = list[float]


def readings_of(raw: str) -> list[tuple[str, float, float]]:
    """The well-formed readings of one entry's `readings` field."""
    try:
        items = json.loads(raw)
    except ValueError:
        return []
    found = []
    for item in items if isinstance(items, list) else ():
        if not (isinstance(item, list) and len(item) == 3 and isinstance(item[0], str)):
            continue
        sensor, at, value = item
        if (
            isinstance(at, int | float)
            and isinstance(value, int | float)
            and not isinstance(value, bool)
            and math.isfinite(at)
            and math.isfinite(value)
        ):
            found.append((sensor, float(at), float(value)))
    return found


def downsample(
    readings: Iterable[tuple[str, float, float]], start: float, end: float, points: int
) -> dict[str, list[Point]]:
    """Per sensor: up to `points` [middle, mean, min, max] over [start, end), in time order."""
    step = (end - start) / points
    buckets: dict[str, dict[int, list[float]]] = {}
    for sensor, at, value in readings:
        if not start <= at < end:
            continue
        index = min(points - 1, int((at - start) / step))
        acc = buckets.setdefault(sensor, {}).setdefault(index, [0.0, 0.0, value, value])
        acc[0] += value
        acc[1] += 1
        acc[2] = min(acc[2], value)
        acc[3] = max(acc[3], value)
    return {
        sensor: [
            [round(start + (i + 0.5) * step, 3), s / n, lo, hi]
            for i, (s, n, lo, hi) in sorted(by_index.items())
        ]
        for sensor, by_index in sorted(buckets.items())
    }


async def recent(
    redis: Redis, device_id: str, now: float, window_s: float
) -> tuple[list[tuple[str, float, float]], bool]:
    """Readings of the last `window_s` seconds (by stream id), and whether the read was cut."""
    entries = cast(
        list[tuple[str, dict[str, str]]],
        await redis.xrevrange(
            keys.history(device_id),
            max="+",
            min=str(int((now - window_s) * 1000)),
            count=MAX_ENTRIES,
        ),
    )
    readings = [r for _id, fields in entries for r in readings_of(fields.get("readings", ""))]
    return readings, len(entries) >= MAX_ENTRIES
