"""The outside tools: schema validation (kubernetes-validate) and security posture
(checkov), run offline over rendered overlays written to a folder.

Each returns problems as sentences; a tool that cannot run is a problem too, never a
silent pass. Custom resources (the Prometheus Operator's) are not sent to
kubernetes-validate, which has no schema for them: `monitoring` checks them instead.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from services.cli.k8s_check.render import Overlay

#: The oldest Kubernetes Vigil supports and the newest the schemas know.
KUBERNETES_VERSIONS = ("1.30.0", "1.37.0")
CUSTOM_KINDS = {"ServiceMonitor", "PodMonitor", "PrometheusRule"}
CHECKOV_CONFIG = Path("k8s/checks/checkov.yaml")
TIMEOUT_S = 300


@dataclass(frozen=True)
class Tools:
    """Where the check tools live (the bin folder of their virtualenv)."""

    bin: Path

    @property
    def kubectl(self) -> Path:
        return self.bin / "kubectl"

    def missing(self) -> list[str]:
        names = ("kubectl", "kubernetes-validate", "checkov")
        return [n for n in names if not (self.bin / n).exists()]


def write_rendered(overlays: list[Overlay], folder: Path) -> dict[str, Path]:
    """One file per overlay, custom resources left out (see the module docstring)."""
    paths = {}
    for overlay in overlays:
        path = folder / f"{overlay.name}.yaml"
        objects = [o for o in overlay.objects if o["kind"] not in CUSTOM_KINDS]
        path.write_text(yaml.safe_dump_all(objects, sort_keys=False))
        paths[overlay.name] = path
    return paths


def validate_schemas(tools: Tools, files: list[Path]) -> list[str]:
    problems = []
    for version in KUBERNETES_VERSIONS:
        result = _run(
            [str(tools.bin / "kubernetes-validate"), "--strict", "--quiet", "-k", version]
            + [str(f) for f in files]
        )
        # It prints ERROR/WARN lines (WARN: no schema for a kind, which is not a pass).
        lines = [ln for ln in result.stdout.splitlines() if ln.startswith(("ERROR", "WARN"))]
        problems += [f"kubernetes {version}: {_short(ln, files)}" for ln in lines]
        if result.returncode != 0 and not lines:
            problems.append(f"kubernetes-validate failed: {result.stderr.strip()[-500:]}")
    return problems


def _short(line: str, files: list[Path]) -> str:
    """The line with the temporary folder left out of file names."""
    for file in files:
        line = line.replace(str(file), file.name)
    return line


def check_posture(tools: Tools, root: Path, folder: Path) -> list[str]:
    """checkov over the rendered overlays and the Dockerfile, offline."""
    (folder / "Dockerfile").write_bytes((root / "Dockerfile").read_bytes())
    result = _run(
        [
            str(tools.bin / "checkov"),
            "--config-file",
            str(root / CHECKOV_CONFIG),
            "--directory",
            str(folder),
            "--output",
            "json",
            "--quiet",
        ],
        # No telemetry, no version check, no downloads: the check must pass offline.
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"},
    )
    try:
        reports: Any = json.loads(result.stdout)
    except json.JSONDecodeError:
        return [f"checkov did not run (exit {result.returncode}): {result.stderr.strip()[-800:]}"]
    problems = []
    for report in reports if isinstance(reports, list) else [reports]:
        if not isinstance(report, dict) or "results" not in report:
            continue  # checkov's "no resources of this framework" summary
        for failed in report["results"]["failed_checks"]:
            problems.append(
                f"{Path(failed['file_path']).name}: {failed['resource']}: "
                f"{failed['check_id']} {failed['check_name']}"
            )
        if report["summary"].get("parsing_errors"):
            problems.append(f"checkov could not parse {report['check_type']} files")
    if not reports:
        problems.append("checkov found nothing to check")
    return problems


def _run(argv: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=TIMEOUT_S, check=False, env=env
    )
