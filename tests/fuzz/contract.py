"""The device contract as the README states it, written independently of the code
under test: the oracles the fuzz tests judge ingest's answers by."""

from __future__ import annotations

import math
import re

from vigil.v1 import common_pb2, ingest_pb2

DEVICE_ID = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
SENSOR = re.compile(r"[A-Za-z0-9_.-]{1,64}")
LABEL_KEY = re.compile(r"[A-Za-z0-9_./-]{1,63}")
DAY_S = 86_400.0


def hello_ok(hello: ingest_pb2.Hello) -> bool:
    return bool(
        DEVICE_ID.fullmatch(hello.device_id)
        and len(hello.labels) <= 32
        and all(
            LABEL_KEY.fullmatch(k) and len(v) <= 256 and v.isprintable()
            for k, v in hello.labels.items()
        )
    )


def reading_ok(reading: common_pb2.Reading, now: float, margin_s: float = 0.0) -> bool:
    """Acceptable, `margin_s` inside the one-day bound (a round trip takes time)."""
    at = reading.time.seconds + reading.time.nanos / 1e9
    return bool(
        SENSOR.fullmatch(reading.sensor)
        and math.isfinite(reading.value)
        and abs(at - now) <= DAY_S - margin_s
    )


def names_field(message: str, *roots: str) -> bool:
    """A refusal that starts with a field under one of `roots`: `batch.readings[3].value:
    must be finite`."""
    field, sep, problem = message.partition(": ")
    return bool(sep and problem.strip() and field.startswith(roots))
