"""Render kustomize overlays into plain objects, and read those objects.

Rendering is `kubectl kustomize DIR` from the check tools' virtualenv. The readers
below give typed access to the few shapes the checks look at (workloads, containers,
env) and never change an object.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

Obj = dict[str, Any]
WORKLOADS = ("Deployment", "StatefulSet")


class RenderError(Exception):
    """An overlay that kustomize cannot build."""


@dataclass(frozen=True)
class Overlay:
    name: str
    objects: list[Obj]

    def find(self, kind: str, name: str) -> Obj | None:
        return next((o for o in self.objects if o["kind"] == kind and ref(o) == name), None)

    def of_kind(self, *kinds: str) -> list[Obj]:
        return [o for o in self.objects if o["kind"] in kinds]


def overlay_dirs(root: Path) -> list[Path]:
    return sorted(p for p in (root / "k8s" / "overlays").iterdir() if p.is_dir())


def render(kubectl: Path, overlay: Path) -> Overlay:
    result = subprocess.run(
        [str(kubectl), "kustomize", str(overlay)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        raise RenderError(result.stderr.strip() or f"kubectl kustomize exited {result.returncode}")
    objects = [o for o in yaml.safe_load_all(result.stdout) if o]
    return Overlay(overlay.name, objects)


def ref(obj: Obj) -> str:
    return str(obj.get("metadata", {}).get("name", "?"))


def where(obj: Obj) -> str:
    return f"{obj.get('kind', '?')}/{ref(obj)}"


def pod_spec(workload: Obj) -> Obj:
    spec: Obj = workload["spec"]["template"]["spec"]
    return spec


def containers(workload: Obj) -> Iterator[Obj]:
    yield from pod_spec(workload).get("containers", [])


def env_values(container: Obj) -> dict[str, str]:
    """Literal env values (those set with `value:`), by name."""
    return {e["name"]: str(e["value"]) for e in container.get("env", []) if "value" in e}


def env_sources(container: Obj) -> dict[str, Obj]:
    """Env entries set with `valueFrom:`, by name."""
    return {e["name"]: e["valueFrom"] for e in container.get("env", []) if "valueFrom" in e}


def ports(container: Obj) -> dict[str, int]:
    """Container ports by name."""
    return {p["name"]: int(p["containerPort"]) for p in container.get("ports", []) if "name" in p}


def is_vigil(container: Obj) -> bool:
    """A container of Vigil's own image (the command is `vigil serve NAME`)."""
    command = container.get("command") or []
    return bool(command) and command[0] == "vigil"


def selects(selector: Obj, labels: dict[str, str]) -> bool:
    """Whether a selector matches: a LabelSelector (matchLabels, matchExpressions) or,
    as in a Service, a plain label map. An empty selector matches everything."""
    is_label_selector = "matchLabels" in selector or "matchExpressions" in selector
    match: dict[str, str] = selector.get("matchLabels", {}) if is_label_selector else selector
    if any(labels.get(k) != v for k, v in match.items()):
        return False
    for expr in selector.get("matchExpressions", []) if is_label_selector else []:
        value, op, values = labels.get(expr["key"]), expr["operator"], expr.get("values", [])
        if (
            (op == "In" and value not in values)
            or (op == "NotIn" and value in values)
            or (op == "Exists" and value is None)
            or (op == "DoesNotExist" and value is not None)
        ):
            return False
    return True


def template_labels(workload: Obj) -> dict[str, str]:
    labels: dict[str, str] = workload["spec"]["template"]["metadata"].get("labels", {})
    return labels
