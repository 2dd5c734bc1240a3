"""How big a chaos run is: small in `make test`, large in `make chaos` (VIGIL_CHAOS=full).

Every run is bounded in count and time and stays on 127.0.0.1.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace


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
    # Network faults (test_network): the faults each link gets, how long each is held,
    # and the delay a slow link adds to every chunk.
    net_faults: tuple[str, ...] = ("delay", "drop", "cut")
    net_hold_s: float = 1.0
    net_delay_s: float = 0.2
    # An outage: a link cut for longer than a Redis client retries (~5 s of backoff),
    # so the error reaches the caller; held on these links.
    net_outage_s: float = 7.0
    net_outage_links: tuple[str, ...] = ("ingest->redis",)
    # A blackhole longer than a Redis client's deadline and retries (7 tries of 5 s):
    # held on these links (none in the small run: it takes most of a minute).
    net_blackhole_s: float = 50.0
    net_blackhole_links: tuple[str, ...] = ()
    # The model down, slow, 429 storm (test_llm): devices under load, rounds of the three.
    llm_devices: int = 20
    llm_rounds: int = 1
    # Load (test_load): batches/s per device of the steady load; overload: devices, the
    # capacity probe and the overload phase.
    load_rate: float = 2.0
    overload_devices: int = 200
    overload_probe_s: float = 2.0
    overload_seconds: float = 5.0


# The small network run holds no outage past the Redis client's retries: test_redis's
# long outage and tests/common/test_redis_away.py show that path in make test.
SMALL = Scale(False, devices=50, rate=4.0, kills_each=1, gap_s=1.5, redis_kills=2,
              load_devices=200, load_seconds=8.0, net_outage_links=())  # fmt: skip
FULL = Scale(True, devices=100, rate=4.0, kills_each=5, gap_s=3.0, redis_kills=4,
             load_devices=1000, load_seconds=60.0)  # fmt: skip

FULL = replace(FULL, net_hold_s=6.0, net_delay_s=0.3, net_outage_s=15.0,
               net_outage_links=("ingest->detector", "ingest->redis", "analyzer->redis",
                                 "notifier->redis"),
               net_blackhole_links=("ingest->redis",),
               llm_devices=100, llm_rounds=3, load_rate=1.0, overload_devices=500,
               overload_probe_s=5.0, overload_seconds=20.0)  # fmt: skip


def scale() -> Scale:
    return FULL if os.environ.get("VIGIL_CHAOS") == "full" else SMALL
