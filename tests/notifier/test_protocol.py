"""The WebSocket protocol's parsers: any input is either a valid request or an
InvalidArgument naming the field; nothing else ever escapes."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.common.errors import InvalidArgument
from services.notifier import durations
from services.notifier.protocol import parse_frame, parse_subscribe

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
subscribe_like = st.fixed_dictionaries(
    {"type": st.just("subscribe"), "token": st.text(max_size=10)},
    optional={
        "last_id": json_values | st.from_regex(r"\d{1,3}-\d", fullmatch=True),
        "devices": json_values | st.lists(st.from_regex(r"[a-z]{1,5}", fullmatch=True)),
        "labels": json_values | st.dictionaries(st.from_regex(r"[a-z]{1,5}", fullmatch=True),
                                                st.text(max_size=5)),
        "min_severity": json_values | st.sampled_from(["info", "warning", "critical"]),
        "kinds": json_values,
        "batch": json_values,
    },
)  # fmt: skip


@given(st.text(max_size=200) | json_values.map(json.dumps))
def test_any_text_is_a_frame_or_invalid_argument(text: str) -> None:
    try:
        frame = parse_frame(text)
    except InvalidArgument as exc:
        assert exc.field == "frame"
    else:
        assert isinstance(frame, dict) and isinstance(frame["type"], str)


@given(subscribe_like)
def test_any_subscribe_is_valid_or_invalid_argument(frame: dict[str, Any]) -> None:
    try:
        request = parse_subscribe(frame)
    except InvalidArgument as exc:
        assert exc.field.split(".")[0] in frame or exc.field == "token"
    else:
        assert request.token == frame["token"]
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in request.filter.labels)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [(None, 60), ("", 60), (90, 90), ("90", 90), ("15m", 900), ("2h", 7200), ("1d", 86_400)],
)
def test_durations(value: Any, seconds: int) -> None:
    assert durations.seconds(value, "window", default=60, lo=1, hi=86_400) == seconds


@pytest.mark.parametrize("value", ["1w", "-5", "5.5m", True, 0, 86_401, [], "m"])
def test_bad_durations_name_the_field(value: Any) -> None:
    with pytest.raises(InvalidArgument, match=r"^window: "):
        durations.seconds(value, "window", default=60, lo=1, hi=86_400)


@pytest.mark.parametrize("last", ["\u0665\u0660-0", "1764000000000-\u096f", "\uff15-0"])
def test_stream_ids_take_ascii_digits_only(last: str) -> None:
    """Other scripts' digits would pass \\d and make Redis refuse the replay's XRANGE."""
    with pytest.raises(InvalidArgument, match=r"^last_id: "):
        parse_subscribe({"type": "subscribe", "token": "t", "last_id": last})
