"""Durations as people type them in an API: `90`, `90s`, `15m`, `2h`, `1d`.

A plain function with strict bounds; the error names the field. Must never accept a
value outside [lo, hi] seconds.
"""

from __future__ import annotations

import re
from typing import Any

from services.common.errors import InvalidArgument

_DURATION = re.compile(r"(\d{1,7})([smhd]?)")
_UNIT_S = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86_400}


def seconds(value: Any, field: str, *, default: int, lo: int, hi: int) -> int:
    """`value` (an int of seconds or a string like "15m") in seconds, within [lo, hi]."""
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        raise InvalidArgument(field, "must be seconds or a duration like '15m'")
    if isinstance(value, int):
        total = value
    elif isinstance(value, str) and (match := _DURATION.fullmatch(value.strip())):
        total = int(match.group(1)) * _UNIT_S[match.group(2)]
    else:
        raise InvalidArgument(field, "must be seconds or a duration like '15m', '2h'")
    if not lo <= total <= hi:
        raise InvalidArgument(field, f"must be between {lo} and {hi} seconds")
    return total
