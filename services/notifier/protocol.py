"""The WebSocket protocol: client frames parsed and validated, server frames built.

Client -> server:
  {"type": "subscribe", "token": str, "last_id": str | null, "devices": [str],
   "labels": {str: str}, "min_severity": "info" | "warning" | "critical",
   "kinds": [str], "batch": bool}
  {"type": "ping"}
Server -> client:
  {"type": "subscribed"}, {"type": "event", "id": str, "event": {...}},
  {"type": "events", "events": [{"id": str, "event": {...}}, ...]}   (batch: true only)
  {"type": "reset", "id": str, "alerts": [...]}, {"type": "pong"},
  {"type": "error", "code": str, "message": str}
Plain functions; must never trust a field it has not checked.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from services.common.errors import InvalidArgument
from services.common.events import SEVERITY_BY_NAME
from services.notifier.entry import Entry
from services.notifier.filters import Filter

# [0-9], not \d: \d also matches other scripts' digits, which Redis refuses as stream ids.
STREAM_ID = re.compile(r"[0-9]{1,20}-[0-9]{1,20}")
NAME = re.compile(r"[A-Za-z0-9_.:-]{1,128}")
LABEL_KEY = re.compile(r"[A-Za-z0-9_./-]{1,63}")
MAX_LIST = 1000
MAX_LABELS = 32
MAX_LABEL_VALUE = 256


@dataclass(frozen=True, slots=True)
class Subscribe:
    token: str
    last_id: str | None
    filter: Filter
    batch: bool


def dumps(frame: dict[str, Any]) -> str:
    return json.dumps(frame, separators=(",", ":"), ensure_ascii=False)


def parse_frame(text: str) -> dict[str, Any]:
    try:
        frame = json.loads(text)
    except ValueError:
        raise InvalidArgument("frame", "not valid JSON") from None
    if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
        raise InvalidArgument("frame", "must be a JSON object with a string 'type'")
    return frame


def names(value: Any, field: str) -> frozenset[str]:
    if value is None:
        return frozenset()
    if not isinstance(value, list) or len(value) > MAX_LIST:
        raise InvalidArgument(field, f"must be a list of at most {MAX_LIST} names")
    for item in value:
        if not isinstance(item, str) or not NAME.fullmatch(item):
            raise InvalidArgument(field, "items must match [A-Za-z0-9_.:-]{1,128}")
    return frozenset(value)


def label_selector(value: Any, field: str = "labels") -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if not isinstance(value, dict) or len(value) > MAX_LABELS:
        raise InvalidArgument(field, f"must be an object of at most {MAX_LABELS} labels")
    for key, wanted in value.items():
        if not LABEL_KEY.fullmatch(key):
            raise InvalidArgument(field, "keys must match [A-Za-z0-9_./-]{1,63}")
        if not isinstance(wanted, str) or len(wanted) > MAX_LABEL_VALUE:
            raise InvalidArgument(
                f"{field}.{key}", f"must be a string of at most {MAX_LABEL_VALUE} characters"
            )
    return tuple(sorted(value.items()))


def last_id(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not STREAM_ID.fullmatch(value):
        raise InvalidArgument("last_id", "must be a stream id like '1764000000000-0' or null")
    return value


def min_severity(value: Any) -> int:
    if value is None or value == "":
        return 0
    if not isinstance(value, str) or value not in SEVERITY_BY_NAME:
        raise InvalidArgument("min_severity", "must be info, warning or critical")
    return SEVERITY_BY_NAME[value]


def parse_subscribe(frame: dict[str, Any]) -> Subscribe:
    if frame.get("type") != "subscribe":
        raise InvalidArgument("type", "the first frame must be {'type': 'subscribe', ...}")
    token = frame.get("token")
    if not isinstance(token, str) or not token or len(token) > 512:
        raise InvalidArgument("token", "must be a non-empty string")
    batch = frame.get("batch", False)
    if not isinstance(batch, bool):
        raise InvalidArgument("batch", "must be true or false")
    return Subscribe(
        token=token,
        last_id=last_id(frame.get("last_id")),
        filter=Filter(
            devices=names(frame.get("devices"), "devices"),
            labels=label_selector(frame.get("labels")),
            min_severity=min_severity(frame.get("min_severity")),
            kinds=names(frame.get("kinds"), "kinds"),
        ),
        batch=batch,
    )


def events_frame(batch: Sequence[Entry]) -> str:
    """Several entries in one frame, built from their pre-encoded items."""
    return '{"type":"events","events":[' + ",".join(entry.item for entry in batch) + "]}"


def error_frame(code: str, message: str) -> str:
    return dumps({"type": "error", "code": code, "message": message})
