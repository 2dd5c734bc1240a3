"""The WebSocket protocol's client frames, parsed and validated as plain functions.

Client -> server:
  {"type": "subscribe", "token": str, "last_id": str | null,
   "devices": [str], "min_severity": "info" | "warning" | "critical", "kinds": [str]}
  {"type": "ping"}
Server -> client:
  {"type": "subscribed"}, {"type": "event", "id": str, "event": {...}},
  {"type": "reset"}, {"type": "pong"}, {"type": "error", "code": str, "message": str}
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from services.common.errors import InvalidArgument
from services.common.events import SEVERITY_BY_NAME
from services.notifier.hub import Filter

STREAM_ID = re.compile(r"\d{1,20}-\d{1,20}")
NAME = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
MAX_LIST = 1000


@dataclass(frozen=True, slots=True)
class Subscribe:
    token: str
    last_id: str | None
    filter: Filter


def parse_frame(text: str) -> dict[str, Any]:
    try:
        frame = json.loads(text)
    except ValueError:
        raise InvalidArgument("frame", "not valid JSON") from None
    if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
        raise InvalidArgument("frame", "must be a JSON object with a string 'type'")
    return frame


def _names(frame: dict[str, Any], field: str) -> frozenset[str]:
    value = frame.get(field) or []
    if not isinstance(value, list) or len(value) > MAX_LIST:
        raise InvalidArgument(field, f"must be a list of at most {MAX_LIST} names")
    for item in value:
        if not isinstance(item, str) or not NAME.fullmatch(item):
            raise InvalidArgument(field, "items must match [A-Za-z0-9_.:-]{1,128}")
    return frozenset(value)


def last_id(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not STREAM_ID.fullmatch(value):
        raise InvalidArgument("last_id", "must be a stream id like '1764000000000-0' or null")
    return value


def min_severity(value: Any) -> int:
    if value is None or value == "":
        return 0
    if value not in SEVERITY_BY_NAME:
        raise InvalidArgument("min_severity", "must be info, warning or critical")
    return SEVERITY_BY_NAME[value]


def parse_subscribe(frame: dict[str, Any]) -> Subscribe:
    if frame.get("type") != "subscribe":
        raise InvalidArgument("type", "the first frame must be {'type': 'subscribe', ...}")
    token = frame.get("token")
    if not isinstance(token, str) or not token or len(token) > 512:
        raise InvalidArgument("token", "must be a non-empty string")
    return Subscribe(
        token=token,
        last_id=last_id(frame.get("last_id")),
        filter=Filter(
            devices=_names(frame, "devices"),
            min_severity=min_severity(frame.get("min_severity")),
            kinds=_names(frame, "kinds"),
        ),
    )
