"""`vigil replay` and `vigil rules check` as a user runs them: real processes, real files."""

from __future__ import annotations

import csv
import math
import os
import random
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def vigil(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.cli", *map(str, args)],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env=os.environ.copy(),
    )


def write_series(path: Path, values: list[float], start: str = "2014-04-01 00:00:00") -> None:
    at = datetime.fromisoformat(start)
    with path.open("w", newline="") as out:
        out.write("timestamp,value\n")
        for i, value in enumerate(values):
            out.write(f"{(at + timedelta(minutes=5 * i)).isoformat(sep=' ')},{value}\n")


def read_scores(path: Path) -> list[tuple[str, float]]:
    with path.open(newline="") as handle:
        reader = csv.reader(handle)
        assert next(reader) == ["timestamp", "anomaly_score"]
        return [(stamp, float(score)) for stamp, score in reader]


def noisy(n: int, seed: int = 1) -> list[float]:
    rng = random.Random(seed)
    return [round(40 + 5 * math.sin(i / 30) + rng.gauss(0, 1), 3) for i in range(n)]


def test_one_score_per_row_in_order_within_bounds(tmp_path: Path) -> None:
    values = noisy(600)
    values[400] = 90.0  # a spike
    write_series(tmp_path / "in.csv", values)
    result = vigil("replay", "--input", tmp_path / "in.csv", "--output", tmp_path / "out.csv")
    assert result.returncode == 0, result.stderr
    scored = read_scores(tmp_path / "out.csv")
    with (tmp_path / "in.csv").open() as handle:
        stamps = [line.split(",")[0] for line in handle.read().splitlines()[1:]]
    assert [stamp for stamp, _ in scored] == stamps
    scores = [score for _, score in scored]
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert scores[400] > 0.9
    assert sorted(scores)[-2] < scores[400]  # the spike is the most anomalous row by far
    assert sum(s >= 0.5 for s in scores) <= 3


def test_no_lookahead_a_prefix_scores_the_same(tmp_path: Path) -> None:
    values = noisy(500, seed=2)
    write_series(tmp_path / "full.csv", values)
    write_series(tmp_path / "head.csv", values[:300])
    for name in ("full", "head"):
        result = vigil(
            "replay", "--input", tmp_path / f"{name}.csv", "--output", tmp_path / f"{name}.out"
        )
        assert result.returncode == 0, result.stderr
    assert read_scores(tmp_path / "head.out") == read_scores(tmp_path / "full.out")[:300]


def test_bad_row_is_a_clear_error_with_its_line_and_no_output(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text(
        "timestamp,value\n2014-04-01 00:00:00,1\n2014-04-01 00:05:00,abc\n2014-04-01 00:10:00,2\n"
    )
    result = vigil("replay", "--input", source, "--output", tmp_path / "out.csv")
    assert result.returncode == 2
    assert result.stderr.strip() == f"vigil: {source}:3: value 'abc' is not a number"
    assert not (tmp_path / "out.csv").exists()
    assert list(tmp_path.iterdir()) == [source]  # no partial file either

    source.write_text("timestamp,value\n01/04/2014 00:00,1\n")
    result = vigil("replay", "--input", source, "--output", tmp_path / "out.csv")
    assert result.returncode == 2 and f"{source}:2: timestamp '01/04/2014 00:00'" in result.stderr

    source.write_text("time,reading\n2014-04-01 00:00:00,1\n")
    result = vigil("replay", "--input", source, "--output", tmp_path / "out.csv")
    assert result.returncode == 2 and f"{source}:1: the header must name" in result.stderr


def test_timestamp_forms_and_blank_lines(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text(
        "timestamp,value\n"
        "2014-04-01T00:00:00Z,1\n"
        "2014-04-01 01:00:00+01:00,2\n"
        "\n"
        "1396310520,3\n"
        "2014-04-01 00:03:00.5,4\n"
    )
    result = vigil("replay", "--input", source, "--output", tmp_path / "out.csv")
    assert result.returncode == 0, result.stderr
    assert [stamp for stamp, _ in read_scores(tmp_path / "out.csv")] == [
        "2014-04-01T00:00:00Z",
        "2014-04-01 01:00:00+01:00",
        "1396310520",
        "2014-04-01 00:03:00.5",
    ]


def test_rules_file_applies_to_the_series(tmp_path: Path) -> None:
    write_series(tmp_path / "in.csv", [10.0] * 50 + [120.0] + [10.0] * 5)
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "defaults: {model: off}\nsensors:\n  value:\n"
        "    thresholds: [{above: 100, severity: warning}]\n"
    )
    result = vigil(
        "replay", "--input", tmp_path / "in.csv", "--output", tmp_path / "out.csv", "--rules", rules
    )
    assert result.returncode == 0, result.stderr
    scores = [s for _, s in read_scores(tmp_path / "out.csv")]
    assert scores[50] == 0.8 and scores.count(0.0) == len(scores) - 1


def test_long_files_show_progress(tmp_path: Path) -> None:
    write_series(tmp_path / "in.csv", noisy(45_000, seed=3))
    assert (tmp_path / "in.csv").stat().st_size > 1_000_000
    result = vigil("replay", "--input", tmp_path / "in.csv", "--output", tmp_path / "out.csv")
    assert result.returncode == 0, result.stderr
    assert "replay: 45000 rows in" in result.stderr
    assert len(read_scores(tmp_path / "out.csv")) == 45_000


def test_rules_check_accepts_and_rejects_naming_the_line(tmp_path: Path) -> None:
    good = vigil("rules", "check", ROOT / "services/detector/rules/default.yaml")
    assert good.returncode == 0, good.stderr
    assert good.stdout.strip().endswith("ok (4 sensors, 0 overrides)")
    bad_file = tmp_path / "bad.yaml"
    bad_file.write_text("sensors:\n  t:\n    thresholds:\n      - {above: 1, severity: loud}\n")
    bad = vigil("rules", "check", bad_file)
    assert bad.returncode == 2
    assert bad.stderr.strip() == (
        f"vigil: {bad_file}:4: sensors.t.thresholds[0].severity: "
        "must be one of info, warning, critical"
    )
    assert "Traceback" not in bad.stderr


def test_iso_parser_treats_naive_times_as_utc() -> None:
    from services.detector.replay import parse_time

    assert parse_time("2014-04-01 00:00:00") == datetime(2014, 4, 1, tzinfo=UTC).timestamp()
