"""`vigil bench --smoke` end to end, and the report schema it promises.

The run's figures depend on the machine, so the test checks the report, never a
figure: the JSON follows `bench/report.schema.json`, every stage ran without error,
each stage gave figures, and every target was judged (its figure was measured). The
smoke size runs every stage's code at the smallest size that completes it: the same
code as `--quick` and the full run, with smaller counts (`make bench-quick` is the
CI-sized run whose figures mean something; it took 70-160 s, too long to repeat in
every `make test` on 2 cores).
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from bench.report import Figure, Target, document, validate
from services.cli.main import BENCH_STAGES as STAGES


@pytest.mark.timeout(300)
def test_smoke_run_writes_a_report_that_follows_the_schema(tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    done = subprocess.run(
        [sys.executable, "-m", "services.cli", "bench", "--smoke", "--json", str(report)],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    doc = json.loads(report.read_text())
    validate(doc)
    assert doc["size"] == "smoke"
    assert [s["stage"] for s in doc["stages"]] == list(STAGES)
    assert [s["error"] for s in doc["stages"]] == [None] * len(STAGES)
    assert {f["stage"] for f in doc["figures"]} == set(STAGES)
    judged = [f for f in doc["figures"] if f["target"] is not None]
    assert judged and all(f["value"] is not None and f["met"] is not None for f in judged)
    # The table on stdout has a row for every figure.
    rows = [
        line for line in done.stdout.splitlines() if line.startswith("| ") and "---" not in line
    ]
    assert len(rows) == 1 + len(doc["figures"])
    assert "vigil bench --smoke" in done.stdout.splitlines()[0]


def minimal() -> dict[str, Any]:
    figure = Figure(
        "queue", "claims/s", 10.0, "jobs/s", 20.0, "ZPOPMAX", Target("<=", 1.0, "ratio")
    )
    return document(
        [figure],
        machine={
            "cpus": 2,
            "cpu_model": "cpu",
            "memory_bytes": 1,
            "os": "Linux",
            "python": "CPython 3.11",
            "packages": {"grpcio": "1.0", "uvloop": None},
            "redis_server": "Redis server v=7",
            "load_average": {"start": 0.5, "end": 0.7},
        },
        command="vigil bench",
        size="full",
        started="2026-01-01T00:00:00Z",
        duration_s=1.0,
        stages={"queue": 1.0},
        errors={},
    )


def test_a_report_from_figures_follows_the_schema_with_ratio_and_verdict() -> None:
    doc = minimal()
    validate(doc)
    assert doc["figures"][0]["ratio"] == 0.5
    assert doc["figures"][0]["met"] is True
    assert doc["figures"][0]["target"]["text"] == "ratio <= 1"


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("figures", 0, "unit"), ""),  # a figure without its unit
        (("figures", 0, "stage"), "disk"),  # a stage the benchmark does not have
        (("figures", 0, "value"), "fast"),  # a number that is not one
        (("figures", 0, "target", "op"), "~"),  # a target no one can judge
        (("machine", "cpus"), 0),
        (("started",), "yesterday"),
    ],
)
def test_the_schema_refuses_a_report_that_breaks_it(path: tuple[Any, ...], value: Any) -> None:
    doc = copy.deepcopy(minimal())
    target = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(jsonschema.ValidationError):
        validate(doc)


def test_the_schema_refuses_a_figure_without_its_baseline_field() -> None:
    doc = minimal()
    del doc["figures"][0]["baseline"]
    with pytest.raises(jsonschema.ValidationError):
        validate(doc)


def test_the_vigil_command_works_where_the_benchmarks_are_not_installed() -> None:
    """The image carries services/, not bench/: `vigil serve` and friends must not need it."""
    without_bench = (
        "import sys; sys.modules['bench'] = None; "
        "from services.cli.main import main; raise SystemExit(main(sys.argv[1:]))"
    )

    def vigil(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", without_bench, *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env={"VIGIL_DEVICE_SECRET": "ab" * 32, "PATH": ""},
        )

    token = vigil("token", "device", "press-7")
    assert token.returncode == 0 and len(token.stdout.strip()) == 64, token.stderr
    bench = vigil("bench", "--quick")
    assert bench.returncode == 2
    assert "bench needs Vigil's source tree" in bench.stderr
