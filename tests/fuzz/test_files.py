"""The file doors: rules files (YAML) and replay CSVs, fed hostile content.

A rules file either loads or is one ConfigError that names the file (and the line when
there is one); a replay either scores every row into [0, 1] or stops with
`FILE:LINE: ...` and leaves no output. Nothing else may escape, and nothing may hang.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from services.common.errors import ConfigError
from services.detector.replay import replay
from services.detector.rules.parse import default_text, load, load_text
from services.detector.rules.spec import Rules
from tests.fuzz import strategies as hs
from tests.fuzz.sizes import PURE, TIMEOUT, cases, ran

pytestmark = [pytest.mark.fuzz, TIMEOUT]

SOURCE = "fuzz.yaml"
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**12), 10**12),
    hs.floats,
    st.sampled_from(["off", "5x", "0x", "30s", "500ms", "1d", "2m", "-1s", "1e400s", "nan"]),
    st.sampled_from(["info", "warning", "critical", "CRITICAL", ""]),
    hs.names,
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(hs.names, inner, max_size=4),
    max_leaves=10,
)


def maybe(keys: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional={k: v | values for k, v in keys.items()})


threshold = maybe({"above": scalars, "below": scalars, "severity": scalars})
layer = maybe(
    {
        "thresholds": st.lists(threshold, max_size=4),
        "rate_of_change": maybe({"max": scalars, "per": scalars, "severity": scalars}),
        "stuck": maybe({"readings": scalars, "for": scalars, "tolerance": scalars,
                        "severity": scalars}),
        "missing": maybe({"after": scalars, "severity": scalars}),
        "model": maybe({"info": scalars, "warning": scalars, "critical": scalars}),
    }
)  # fmt: skip
documents = maybe(
    {
        "defaults": layer,
        "sensors": st.dictionaries(hs.names, layer, max_size=3),
        "overrides": st.lists(
            maybe(
                {
                    "match": maybe({"device": hs.names, "labels": st.dictionaries(
                        hs.names, hs.names, max_size=2)}),
                    "sensors": st.dictionaries(hs.names, layer, max_size=2),
                    "defaults": layer,
                    "devices": maybe({"offline": maybe({"after": scalars, "severity": scalars})}),
                }
            ),
            max_size=3,
        ),
        "episodes": maybe({"quiet_readings": scalars, "quiet_seconds": scalars, "hold": scalars}),
        "devices": maybe({"offline": maybe({"after": scalars, "severity": scalars})}),
    }
)  # fmt: skip
TRICKS = [
    "a: &a [*a]\n",  # a recursive alias
    "defaults: !!python/object/apply:os.system ['true']\n",  # never executed
    "sensors: {t: {thresholds: [&t {above: 1, severity: info}" + ", *t" * 500 + "]}}\n",
    "[" * 200 + "]" * 200 + "\n",
    "defaults:\n\tmodel: off\n",
    "\ufeffepisodes: {quiet_readings: 5}\n",
    "? [a, b]\n: 1\n",
    "sensors:\n  temperature:\n    thresholds:\n      - {above: .inf, severity: critical}\n",
    "sensors: {t: {thresholds: [{above: .nan, severity: warning}]}}\n",
    "\x00\x01\x02",
    "--- 1\n--- 2\n",
]


def mutate(text: str, at: int, junk: str) -> str:
    cut = at % (len(text) + 1)
    return text[:cut] + junk + text[cut:]


rules_texts = st.one_of(
    documents.map(lambda d: yaml.safe_dump(d, allow_unicode=True)),
    st.sampled_from(TRICKS),
    st.builds(mutate, st.just(default_text()), st.integers(0, 10**6), st.text(max_size=8)),
    st.text(max_size=300),
)


@cases(PURE)
@given(rules_texts)
def test_any_rules_text_loads_or_is_one_error_naming_the_file_and_line(text: str) -> None:
    ran("detector rules file (YAML)")
    try:
        rules = load_text(text, SOURCE)
    except ConfigError as exc:
        assert exc.message.startswith(f"{SOURCE}"), exc.message
    else:
        assert isinstance(rules, Rules)
        for layer_ in [rules.defaults, *rules.sensors.values()]:
            for rule in layer_.thresholds or ():
                assert rule.severity in (1, 2, 3)


STAMPS = st.one_of(
    st.floats(1.0e9, 2.0e9).map(repr),
    st.sampled_from(
        [
            "2014-04-01 00:00:00",
            "2014-04-01T00:00:00Z",
            "2014-04-01T00:00:00+14:00",
            "0001-01-01T00:00:00+14:00",
            "9999-12-31T23:59:59-14:00",
            "1e308",
            "-1e308",
            "inf",
            "nan",
            "",
            "2014-02-30",
        ]
    ),
    hs.names,
)
NUMBERS = st.one_of(hs.floats.map(repr), st.sampled_from(["1e400", "-inf", "", "1_0", "0x10"]))
HEADERS = st.sampled_from(
    [
        "timestamp,value",
        "Timestamp , VALUE ,extra",
        "\ufefftimestamp,value",
        "value,timestamp",
        "time,value",
        "",
        '"timestamp","value"',
    ]
)
row_texts = st.one_of(
    st.builds(lambda t, v: f"{t},{v}", STAMPS, NUMBERS),
    st.sampled_from(["", ",", '"unterminated,1', "a,b,c,d", "\x00,1", " , "]),
    st.text(max_size=30).filter(lambda s: "\n" not in s and "\r" not in s),
)
csv_texts = st.builds(
    lambda header, rows, end: header + "\n" + "\n".join(rows) + end,
    HEADERS,
    st.lists(row_texts, max_size=40),
    st.sampled_from(["", "\n", "\r\n"]),
)
DEFAULT_RULES = load(None)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("replay")


@cases(PURE)
@given(text=st.one_of(csv_texts, st.binary(max_size=200).map(lambda b: b.decode("latin-1"))))
def test_any_replay_csv_scores_every_row_or_stops_at_its_line_with_no_output(
    folder: Path, text: str
) -> None:
    ran("detector replay CSV")
    source, target = folder / "in.csv", folder / "out.csv"
    source.write_text(text, encoding="utf-8", errors="surrogatepass")
    target.unlink(missing_ok=True)
    try:
        count = replay(source, target, DEFAULT_RULES, progress=None)
    except ConfigError as exc:
        assert exc.message.startswith(f"{source}:") or exc.message.startswith(f"{source}: ")
        assert not target.exists()
        assert not (folder / "out.csv.partial").exists()
        return
    with target.open(newline="", encoding="utf-8") as handle:
        out = list(csv.reader(handle))
    assert out[0] == ["timestamp", "anomaly_score"]
    assert len(out) == count + 1
    for _, score in out[1:]:
        assert math.isfinite(float(score)) and 0.0 <= float(score) <= 1.0
