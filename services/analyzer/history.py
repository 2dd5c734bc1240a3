"""A device's recent history, read from `vigil:history:{device}` and summarised per
sensor, so a prompt carries statistics instead of thousands of points.

Entries (one per batch, field `readings` = JSON [[sensor, unix seconds, value], ...])
are read newest first up to a bound; malformed entries and readings are skipped and
counted. `summarise` is a plain function.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, cast

from redis.asyncio import Redis

from services.common import keys

Reading = tuple[str, float, float]
MAX_SENSORS = 50


@dataclass(frozen=True, slots=True)
class History:
    readings: list[Reading]
    skipped: int


async def read_history(redis: Redis, device_id: str, since_s: float, max_entries: int) -> History:
    """Readings of `device_id` since `since_s` (Unix seconds), oldest first."""
    entries = cast(
        list[tuple[str, dict[str, str]]],
        await redis.xrevrange(
            keys.history(device_id), max="+", min=f"{int(since_s * 1000)}", count=max_entries
        ),
    )
    readings: list[Reading] = []
    skipped = 0
    for _entry_id, fields in reversed(entries):
        try:
            rows = json.loads(fields.get("readings", ""))
        except ValueError:
            skipped += 1
            continue
        for row in rows if isinstance(rows, list) else ():
            reading = _reading(row)
            if reading is None:
                skipped += 1
            elif reading[1] >= since_s:
                readings.append(reading)
    return History(readings, skipped)


def _reading(row: Any) -> Reading | None:
    if not isinstance(row, list) or len(row) != 3 or not isinstance(row[0], str):
        return None
    try:
        at, value = float(row[1]), float(row[2])
    except (TypeError, ValueError):
        return None
    if not (math.isfinite(at) and math.isfinite(value)):
        return None
    return row[0], at, value


def _round(value: float) -> float:
    return float(f"{value:.4g}")


def summarise(readings: Iterable[Reading]) -> dict[str, dict[str, Any]]:
    """Per sensor: count, first/last time, min, max, mean, stdev, last value and the
    least-squares trend per minute. At most MAX_SENSORS sensors, by name."""
    series: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for sensor, at, value in readings:
        series[sensor].append((at, value))
    summary: dict[str, dict[str, Any]] = {}
    for sensor in sorted(series)[:MAX_SENSORS]:
        points = sorted(series[sensor])
        values = [v for _, v in points]
        n = len(values)
        mean = sum(values) / n
        stdev = math.sqrt(sum((v - mean) ** 2 for v in values) / n)
        t0 = points[0][0]
        times = [t - t0 for t, _ in points]
        tmean = sum(times) / n
        var_t = sum((t - tmean) ** 2 for t in times)
        slope = (
            sum((t - tmean) * (v - mean) for t, v in zip(times, values, strict=True)) / var_t
            if var_t > 0
            else 0.0
        )
        summary[sensor] = {
            "count": n,
            "first_time": round(points[0][0], 3),
            "last_time": round(points[-1][0], 3),
            "min": _round(min(values)),
            "max": _round(max(values)),
            "mean": _round(mean),
            "stdev": _round(stdev),
            "last": _round(values[-1]),
            "trend_per_minute": _round(slope * 60),
        }
    return summary
