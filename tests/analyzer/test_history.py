"""Reading and summarising `vigil:history:{device}` (format of the shared contract)."""

from __future__ import annotations

import json
import time

import pytest
from redis.asyncio import Redis

from services.analyzer.history import read_history, summarise
from services.common import keys


async def write_batch(redis: Redis, device: str, rows: list[list[object]], at: float) -> None:
    await redis.xadd(keys.history(device), {"readings": json.dumps(rows)}, id=f"{int(at * 1000)}-0")


def test_summary_is_statistics_per_sensor_not_points() -> None:
    readings = [("temperature", 1000.0 + 60 * i, 50.0 + i) for i in range(11)]
    readings += [("pressure", 1000.0 + 60 * i, 5.0) for i in range(11)]
    summary = summarise(readings)
    assert list(summary) == ["pressure", "temperature"]
    temperature = summary["temperature"]
    assert temperature["count"] == 11
    assert (temperature["min"], temperature["max"], temperature["last"]) == (50, 60, 60)
    assert temperature["mean"] == 55
    assert temperature["trend_per_minute"] == pytest.approx(1.0)
    assert summary["pressure"]["stdev"] == 0 and summary["pressure"]["trend_per_minute"] == 0


async def test_history_reads_the_window_and_skips_what_is_malformed(redis: Redis) -> None:
    now = time.time()
    await write_batch(redis, "d1", [["temperature", now - 7200, 1.0]], now - 7200)
    await write_batch(redis, "d1", [["temperature", now - 60, 2.0], ["bad"]], now - 60)
    await redis.xadd(keys.history("d1"), {"readings": "{oops"}, id=f"{int((now - 45) * 1000)}-0")
    await write_batch(redis, "d1", [["temperature", now - 30, 3.0], ["x", now, "nan"]], now - 30)
    history = await read_history(redis, "d1", now - 3600, 100)
    assert [r[2] for r in history.readings] == [2.0, 3.0]
    assert history.skipped == 3


async def test_history_keeps_the_newest_entries_when_there_are_too_many(redis: Redis) -> None:
    now = time.time()
    for i in range(10):
        await write_batch(redis, "d1", [["t", now - 100 + i, float(i)]], now - 100 + i)
    history = await read_history(redis, "d1", now - 3600, 3)
    assert [r[2] for r in history.readings] == [7.0, 8.0, 9.0]
