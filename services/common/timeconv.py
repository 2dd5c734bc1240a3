"""Conversions between protobuf Timestamps and Unix seconds, in one place."""

from __future__ import annotations

from google.protobuf.timestamp_pb2 import Timestamp


def to_seconds(ts: Timestamp) -> float:
    return ts.seconds + ts.nanos / 1e9


def from_seconds(seconds: float, into: Timestamp | None = None) -> Timestamp:
    ts = Timestamp() if into is None else into
    whole = int(seconds // 1)
    ts.seconds = whole
    ts.nanos = min(round((seconds - whole) * 1e9), 999_999_999)
    return ts
