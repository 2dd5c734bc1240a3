"""Validation of what devices send, as plain functions with no I/O.

Each refusal is an `InvalidArgument` naming the field (`batch.readings[3].value`), so a
device maker can fix the device from the message alone.
"""

from __future__ import annotations

import math
import re

from vigil.v1 import ingest_pb2

from services.common.errors import InvalidArgument

SENSOR = re.compile(r"[A-Za-z0-9_.-]{1,64}")
DEVICE_ID = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
LABEL_KEY = re.compile(r"[A-Za-z0-9_./-]{1,63}")
MAX_LABELS = 32
MAX_LABEL_VALUE = 256
MAX_SKEW_S = 86_400.0


def _printable(text: str) -> bool:
    return all(ch.isprintable() for ch in text)


def _shown(key: str) -> str:
    """A label key as a refusal names it: cut short, since the message travels in a
    gRPC trailer and a client drops trailers larger than its limit (8-16 KiB)."""
    return repr(key) if len(key) <= 64 else f"{key[:64]!r}..."


def hello(message: ingest_pb2.Hello) -> tuple[str, dict[str, str]]:
    """The device id and labels of a valid Hello."""
    if not DEVICE_ID.fullmatch(message.device_id):
        raise InvalidArgument("hello.device_id", "must match [A-Za-z0-9_.:-]{1,128}")
    if len(message.labels) > MAX_LABELS:
        raise InvalidArgument("hello.labels", f"at most {MAX_LABELS} labels")
    for key, value in message.labels.items():
        if not LABEL_KEY.fullmatch(key):
            raise InvalidArgument(
                f"hello.labels[{_shown(key)}]", "key must match [A-Za-z0-9_./-]{1,63}"
            )
        if len(value) > MAX_LABEL_VALUE or not _printable(value):
            raise InvalidArgument(
                f"hello.labels[{_shown(key)}]",
                f"value must be printable text of at most {MAX_LABEL_VALUE} characters",
            )
    return message.device_id, dict(message.labels)


def batch(
    message: ingest_pb2.ReadingBatch, now: float, max_readings: int
) -> list[tuple[str, float, float]]:
    """The batch's (sensor, unix seconds, value) rows; InvalidArgument unless every
    reading is acceptable."""
    count = len(message.readings)
    if count == 0:
        raise InvalidArgument("batch.readings", "must not be empty")
    if count > max_readings:
        raise InvalidArgument("batch.readings", f"{count} readings, at most {max_readings}")
    lo, hi = now - MAX_SKEW_S, now + MAX_SKEW_S
    rows = []
    known: set[str] = set()  # sensor names already checked in this batch
    isfinite = math.isfinite
    for i, reading in enumerate(message.readings):
        sensor = reading.sensor
        if sensor not in known:
            if not SENSOR.fullmatch(sensor):
                raise InvalidArgument(
                    f"batch.readings[{i}].sensor", "must match [A-Za-z0-9_.-]{1,64}"
                )
            known.add(sensor)
        value = reading.value
        if not isfinite(value):
            raise InvalidArgument(f"batch.readings[{i}].value", "must be finite")
        time = reading.time
        at = time.seconds + time.nanos / 1e9
        if not lo <= at <= hi:
            raise InvalidArgument(
                f"batch.readings[{i}].time", "must be within one day of the server's clock"
            )
        rows.append((sensor, at, value))
    return rows
