"""The chaos checker must not call a run quiet while the detector still owes alerts.

When the fleet stops, every device says goodbye, and the detector raises each one's
offline alert only once the device has been silent past its learned limit: seconds
later, and longer after a run full of faults (its devices' arrivals were irregular).
A checker that called the system quiet in that gap counted those alerts' jobs, still
to come, as lost; it did so in 1 of 11 rounds of the full network-fault run.
"""

from __future__ import annotations

import asyncio
import json

from redis.asyncio import Redis

from services.common import keys
from services.common.events import stream_fields
from tests.support.checker import QUIET_S, Checker, silence_due
from tests.support.fleet import Fleet


def _entry(ms: int, seq: int, event: dict[str, object]) -> tuple[str, dict[str, str]]:
    return f"{ms}-{seq}", stream_fields(event)


def _presence(device: str, status: str) -> dict[str, object]:
    return {"kind": "device", "device_id": device, "status": status, "severity": None}


def _offline_alert(device: str, state: str) -> dict[str, object]:
    return {
        "kind": "alert",
        "state": state,
        "alert_id": f"ep-{device}",
        "episode_id": f"ep-{device}",
        "device_id": device,
        "sensor": "",
        "severity": "warning",
        "value": 7.7,
        "reasons": ["no data for 7.7 s (it usually reports every 0.3 s)"],
    }


def test_a_device_that_left_is_due_its_offline_alert_until_it_opens() -> None:
    events = [
        _entry(1_000, 0, _presence("f-0001", "offline")),
        _entry(1_000, 1, _presence("f-0002", "offline")),
        _entry(1_000, 2, _presence("other-0001", "offline")),  # not this fleet's
        _entry(6_000, 0, _offline_alert("f-0002", "opened")),
    ]
    assert silence_due(events, "f", now_ms=7_000, wait_ms=60_000) == {"f-0001"}
    # Past the wait, a device with no offline alert (no cadence learned) is not waited for.
    assert silence_due(events, "f", now_ms=61_001, wait_ms=60_000) == set()


def test_a_device_that_came_back_or_is_already_offline_is_not_due() -> None:
    events = [
        _entry(1_000, 0, _offline_alert("f-0001", "opened")),  # silent, not yet gone
        _entry(2_000, 0, _presence("f-0001", "offline")),
        _entry(2_000, 1, _presence("f-0002", "offline")),
        _entry(3_000, 0, _presence("f-0002", "online")),
        _entry(3_000, 1, _offline_alert("f-0003", "opened")),
        _entry(4_000, 0, _offline_alert("f-0003", "resolved")),
        _entry(5_000, 0, _presence("f-0003", "offline")),
    ]
    assert silence_due(events, "f", now_ms=6_000, wait_ms=60_000) == {"f-0003"}


async def test_converge_waits_for_the_offline_alert_that_follows_a_goodbye(
    redis: Redis,
) -> None:
    fleet = Fleet("127.0.0.1:1", lambda _device: "", 1, 1.0, prefix="f")  # never started
    checker = Checker(redis, fleet, None)
    await redis.xadd(keys.EVENTS, stream_fields(_presence("f-0000", "offline")))
    converging = asyncio.create_task(checker.converge(timeout_s=30.0))
    # Quiet for longer than QUIET_S, queue empty, nothing unanswered: only the offline
    # alert still due keeps it converging.
    done, _ = await asyncio.wait({converging}, timeout=QUIET_S + 1.5)
    assert not done, "the checker called the run quiet before the device's offline alert"
    alert = _offline_alert("f-0000", "opened")
    await redis.xadd(keys.EVENTS, stream_fields(alert))
    insight = {"kind": "insight", "device_id": "f-0000", "job_id": "alert:ep-f-0000:2"}
    await redis.xadd(keys.EVENTS, stream_fields(insight))
    await asyncio.wait_for(converging, 20.0)
    events = await redis.xrange(keys.EVENTS)
    assert [json.loads(f["data"])["kind"] for _, f in events] == ["device", "alert", "insight"]
