"""The Dockerfile's build stage, without a container engine: the files it COPYs, and
only those, build a wheel that carries everything `vigil serve` needs at run time."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from tests.support.k8s_tools import ROOT


def build_stage_sources() -> list[str]:
    """Sources of the build stage's COPY lines (before the runtime stage's FROM)."""
    build_stage = (ROOT / "Dockerfile").read_text().split("\nFROM ")[1]
    sources = []
    for line in build_stage.splitlines():
        words = line.split()
        if words[:1] == ["COPY"] and not any(w.startswith("--from") for w in words):
            sources += words[1:-1]
    return sources


def test_the_copied_sources_build_a_wheel_with_generated_code_and_data(tmp_path: Path) -> None:
    context = tmp_path / "src"
    for source in build_stage_sources():
        target = context / source
        if (ROOT / source).is_dir():
            shutil.copytree(ROOT / source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(ROOT / source, target)
    assert sorted(build_stage_sources()) == [
        "README.md",
        "constraints.txt",
        "pyproject.toml",
        "services",
    ]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--wheel-dir",
            str(tmp_path / "wheels"),
            str(context),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    (wheel,) = (tmp_path / "wheels").glob("vigil-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for proto in ("common", "ingest", "detector", "analyzer", "notifier"):
        assert f"vigil/v1/{proto}_pb2.py" in names
        assert f"vigil/v1/{proto}_pb2_grpc.py" in names
    assert "services/common/lua/lib/enqueue.lua" in names
    assert {n for n in names if n.startswith("services/common/lua/") and n.endswith(".lua")}
    assert "services/detector/rules/default.yaml" in names
    assert {"services/notifier/static/index.html", "services/notifier/static/app.js"} <= names
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "vigil = services.cli.main:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_the_docker_context_lets_through_what_the_build_copies() -> None:
    """.dockerignore ignores everything (`*`) but the files the build stage copies."""
    rules = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert rules[0] == "*"
    allowed = {rule[1:].rstrip("/") for rule in rules if rule.startswith("!")}
    assert set(build_stage_sources()) <= allowed
