"""Device history written in the documented `vigil:history:{device}` format."""

from __future__ import annotations

import json
import time

from redis.asyncio import Redis

from services.common import keys


async def write_history(redis: Redis, device: str, minutes: int = 30) -> int:
    """One batch a minute of temperature rising 1 degree per minute, pressure flat."""
    now = time.time()
    for i in range(minutes):
        at = now - (minutes - i) * 60
        rows = [["temperature", at, 60.0 + i], ["pressure", at, 5.0]]
        await redis.xadd(
            keys.history(device), {"readings": json.dumps(rows)}, id=f"{int(at * 1000)}-0"
        )
    return 2 * minutes
