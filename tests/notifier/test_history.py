"""Sparkline reduction as plain functions."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from services.notifier.history import downsample, readings_of


def test_readings_of_keeps_only_well_formed_readings() -> None:
    raw = json.dumps([["t", 1.0, 2.0], ["t", 1.0, "x"], ["t", 1.0], [1, 2, 3], ["v", 2, True],
                      ["ok", 3, 4]])  # fmt: skip
    assert readings_of(raw) == [("t", 1.0, 2.0), ("ok", 3.0, 4.0)]
    assert readings_of("{broken") == readings_of('{"a": 1}') == []


def test_downsample_buckets_mean_min_max_in_time_order() -> None:
    readings = [("t", 0.0, 1.0), ("t", 4.0, 3.0), ("t", 9.9, 10.0), ("t", 10.0, 99.0)]
    assert downsample(readings, 0.0, 10.0, 2) == {
        "t": [[2.5, 2.0, 1.0, 3.0], [7.5, 10.0, 10.0, 10.0]]
    }


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["a", "b"]),
            st.floats(-10, 110, allow_nan=False),
            st.floats(-1e6, 1e6, allow_nan=False),
        ),
        max_size=300,
    ),
    st.integers(2, 50),
)
def test_downsample_never_exceeds_points_and_stays_within_the_data(
    readings: list[tuple[str, float, float]], points: int
) -> None:
    reduced = downsample(readings, 0.0, 100.0, points)
    for sensor, series in reduced.items():
        values = [v for s, at, v in readings if s == sensor and 0.0 <= at < 100.0]
        assert 1 <= len(series) <= points
        assert [p[0] for p in series] == sorted(p[0] for p in series)
        for _, mean, lo, hi in series:
            assert lo <= hi and min(values) <= lo and hi <= max(values)
            assert lo - 1e-6 * abs(lo) <= mean <= hi + 1e-6 * abs(hi)  # float sums round
