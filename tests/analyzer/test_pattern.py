"""The cache key: similar incidents share a pattern, different ones do not."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from services.analyzer.pattern import pattern_of, sensor_kind

ALERT: dict[str, Any] = {
    "device_id": "press-7",
    "sensor": "temperature",
    "severity": "critical",
    "value": 97.2,
    "score": 0.9,
    "reasons": ["value 97.2 above critical threshold 95"],
    "labels": {"site": "north", "model": "P-200"},
}


def key(**change: Any) -> str:
    return pattern_of({**ALERT, **change}).digest()


def test_device_id_and_nearby_values_do_not_change_the_key() -> None:
    assert key(device_id="press-9") == key()
    assert key(value=97.9, reasons=["value 97.9 above critical threshold 95"]) == key()
    assert key(sensor="Temperature_2") == key()
    assert key(labels={"model": "P-200", "site": "north"}) == key()  # order is irrelevant


def test_what_changes_the_diagnosis_changes_the_key() -> None:
    base = key()
    assert key(severity="warning") != base
    assert key(sensor="pressure") != base
    assert key(labels={"site": "south", "model": "P-200"}) != base
    # 2 % over the threshold vs 26 % over it: different magnitude buckets.
    assert key(value=125.0, reasons=["value 125 above critical threshold 95"]) != base
    low = key(value=-30, reasons=["value -30 below warning threshold -20"])
    assert low != base
    assert (
        pattern_of({**ALERT, "reasons": ["value -30 below warning threshold -20"]}).direction
        == "low"
    )


def test_pattern_records_exactly_the_documented_features() -> None:
    pattern = pattern_of(ALERT)
    assert pattern.sensor == "temperature"
    assert pattern.severity == "critical"
    assert pattern.direction == "high"
    assert pattern.kinds == ("threshold",)
    assert pattern.magnitude == "threshold 2-5%"
    assert pattern.labels == (("model", "P-200"), ("site", "north"))


def test_baseline_reasons_bucket_by_standard_deviations() -> None:
    alert = {**ALERT, "reasons": ["4.8\u03c3 above its 1-hour baseline"]}
    pattern = pattern_of(alert)
    assert (pattern.direction, pattern.magnitude, pattern.kinds) == (
        "high",
        "baseline 4-6sd",
        ("baseline",),
    )


def test_label_keys_choose_which_labels_enter_the_key() -> None:
    one = {**ALERT, "labels": {"model": "P-200", "serial": "SN-1"}}
    two = {**ALERT, "labels": {"model": "P-200", "serial": "SN-2"}}
    assert pattern_of(one).digest() != pattern_of(two).digest()
    assert pattern_of(one, ["model"]).digest() == pattern_of(two, ["model"]).digest()


def test_sensor_kind_drops_a_trailing_number() -> None:
    assert sensor_kind("Temperature_2") == "temperature"
    assert sensor_kind("vib.3") == "vib"
    assert sensor_kind("42") == "42"


@settings(max_examples=200)
@given(
    st.dictionaries(
        st.sampled_from(["sensor", "severity", "value", "score", "reasons", "labels", "x"]),
        st.one_of(
            st.none(),
            st.text(max_size=20),
            st.floats(allow_nan=True),
            st.lists(st.one_of(st.text(max_size=40), st.none(), st.integers()), max_size=4),
            st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=4),
        ),
        max_size=7,
    )
)
def test_any_alert_body_gives_a_pattern(body: dict[str, Any]) -> None:
    digest = pattern_of(body).digest()
    assert len(digest) == 64 and digest == pattern_of(dict(body)).digest()
