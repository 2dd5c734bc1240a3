"""The `make k8s-check` command line: every stage, every overlay, one report.

Exit 0 when there is nothing to report, 1 with one line per problem otherwise, 2 when
the tools are missing. Stages can be chosen (`--only`) so a test of one stage does not
pay for the others.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from services.cli.k8s_check import monitoring, tools, wiring
from services.cli.k8s_check.render import Overlay, RenderError, overlay_dirs, render

STAGES = ("wiring", "monitoring", "schemas", "posture")
ROOT = Path(__file__).resolve().parents[3]


def run(root: Path, kit: tools.Tools, stages: tuple[str, ...] = STAGES) -> list[str]:
    """All problems found in the manifests under `root` (an empty list: all good)."""
    overlays: list[Overlay] = []
    problems: list[str] = []
    for directory in overlay_dirs(root):
        try:
            overlays.append(render(kit.kubectl, directory))
        except RenderError as exc:
            problems.append(f"{directory.name}: kustomize cannot render it: {exc}")
    if problems or not overlays:
        return problems or ["no overlays under k8s/overlays"]
    with tempfile.TemporaryDirectory(prefix="vigil-k8s-check-") as tmp:
        files = tools.write_rendered(overlays, Path(tmp))
        stage_runs: dict[str, Callable[[], list[str]]] = {
            "wiring": lambda: (
                wiring.rules_copy_is_current(root) + [p for o in overlays for p in wiring.check(o)]
            ),
            "monitoring": lambda: monitoring.check(overlays, root),
            "schemas": lambda: tools.validate_schemas(kit, list(files.values())),
            "posture": lambda: tools.check_posture(kit, root, Path(tmp)),
        }
        for stage in stages:
            started = time.monotonic()
            found = stage_runs[stage]()
            print(
                f"k8s-check: {stage}: {len(found)} problem(s) in {time.monotonic() - started:.1f}s",
                file=sys.stderr,
            )
            problems += [f"[{stage}] {p}" for p in found]
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="k8s-check", description="Render, validate and check the Kubernetes manifests."
    )
    parser.add_argument("--tools", type=Path, required=True, help="bin folder of the tools")
    parser.add_argument("--root", type=Path, default=ROOT, help="repository root")
    parser.add_argument("--only", choices=STAGES, action="append", help="run only these stages")
    args = parser.parse_args(argv)
    kit = tools.Tools(args.tools.resolve())
    missing = kit.missing()
    if missing:
        print(
            f"k8s-check: {', '.join(missing)} not in {kit.bin}; run `make k8s-check`",
            file=sys.stderr,
        )
        return 2
    root = args.root.resolve()
    problems = run(root, kit, tuple(args.only or STAGES))
    for problem in problems:
        print(problem)
    names = ", ".join(p.name for p in overlay_dirs(root))
    print(f"k8s-check: {len(problems)} problem(s) in overlays {names}", file=sys.stderr)
    return 1 if problems else 0
