"""How big a chaos run is: small in `make test`, large in `make chaos` (VIGIL_CHAOS=full).

Every run is bounded in count and time and stays on 127.0.0.1.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Scale:
    full: bool
    devices: int  # simulated devices under steady load
    rate: float  # batches per second per device
    kills_each: int  # kill -9 of each service per run
    gap_s: float  # steady load between faults
    redis_kills: int  # outages alternate: short (within client retries), long
    load_devices: int  # the steady load test
    load_seconds: float


SMALL = Scale(False, devices=50, rate=4.0, kills_each=1, gap_s=1.5, redis_kills=2,
              load_devices=200, load_seconds=8.0)  # fmt: skip
FULL = Scale(True, devices=100, rate=4.0, kills_each=5, gap_s=3.0, redis_kills=4,
             load_devices=1000, load_seconds=60.0)  # fmt: skip


def scale() -> Scale:
    return FULL if os.environ.get("VIGIL_CHAOS") == "full" else SMALL
