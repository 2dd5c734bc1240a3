"""The monitoring objects mean what they say: alerts and dashboard panels are valid
PromQL over metrics Vigil exports, the dashboard covers every Vigil metric, the
ServiceMonitor finds the metrics ports, and the analyzer's autoscaler asks for a metric
the Prometheus Adapter rule serves.

Metric names come from the services' own metric modules (imported, never run) plus the
names other parts promise in the shared contracts.
"""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path
from typing import Any

import promql_parser
import yaml
from prometheus_client import REGISTRY

from services.cli.k8s_check.render import Obj, Overlay, selects, where

METRIC_MODULES = (
    "services.common.metrics",
    "services.ingest.metrics",
    "services.detector.metrics",
    "services.analyzer.metrics",
    "services.notifier.metrics",
)
#: Metrics the shared contracts promise (Kubernetes autoscaling and alerts rely on them).
PROMISED = {
    "vigil_analyzer_queue_depth",
    "vigil_analyzer_dead_letters_total",
    "vigil_analyzer_shed_jobs_total",
    "vigil_analyzer_breaker_state",
    "vigil_analyzer_llm_cost_total",
    "vigil_analyzer_llm_tokens_total",
    "vigil_analyzer_cache_requests_total",
}
#: Series Prometheus itself or every Python process provides.
STANDARD = re.compile(r"^(up|process_[a-z_]+|python_[a-z_]+)$")
GRAFANA_VARIABLES = re.compile(r"\$(__rate_interval|__interval|__range)\b")
SEVERITIES = {"critical", "warning", "info"}
DURATION = re.compile(r"^([0-9]+(ms|s|m|h|d|w|y))+$")
DASHBOARD = Path("k8s/components/monitoring/grafana/vigil.json")
ADAPTER_VALUES = Path("k8s/components/monitoring/prometheus-adapter/values.yaml")


def exported_metrics() -> set[str]:
    """Every sample name the services' metric modules can produce."""
    for module in METRIC_MODULES:
        importlib.import_module(module)
    names = set()
    for family in REGISTRY.collect():
        if family.type == "counter":
            names.add(family.name + "_total")
        elif family.type == "histogram":
            names.update(family.name + suffix for suffix in ("_bucket", "_sum", "_count"))
        else:
            names.add(family.name)
    return names


def _base(name: str) -> str:
    return re.sub(r"_(bucket|sum|count)$", "", name)


def metrics_in(expr: str) -> tuple[set[str], str | None]:
    """The metric names an expression reads, or the parser's complaint."""
    try:
        parsed = promql_parser.parse(GRAFANA_VARIABLES.sub("5m", expr))
    except ValueError as exc:
        return set(), str(exc)
    names: set[str] = set()

    def visit(node: promql_parser.Expr) -> None:
        if isinstance(node, promql_parser.VectorSelector) and node.name:
            names.add(node.name)

    promql_parser.walk(parsed, visit)
    return names, None


def _query_problems(at: str, expr: str, known: set[str]) -> tuple[set[str], list[str]]:
    names, error = metrics_in(expr)
    if error is not None:
        return names, [f"{at}: invalid PromQL ({error}): {expr}"]
    unknown = sorted(n for n in names if n not in known and not STANDARD.match(n))
    return names, [f"{at}: no service exports {n}" for n in unknown]


def alerts(overlay: Overlay, known: set[str]) -> list[str]:
    problems = []
    for rule_set in overlay.of_kind("PrometheusRule"):
        for group in rule_set["spec"]["groups"]:
            for rule in group["rules"]:
                at = f"{overlay.name}: {where(rule_set)}: {rule.get('alert', rule.get('record'))}"
                problems += _query_problems(at, str(rule.get("expr", "")), known)[1]
                if "for" in rule and not DURATION.match(str(rule["for"])):
                    problems.append(f"{at}: `for: {rule['for']}` is not a duration")
                if "alert" in rule:
                    if rule.get("labels", {}).get("severity") not in SEVERITIES:
                        problems.append(f"{at}: labels.severity must be one of {SEVERITIES}")
                    annotations = rule.get("annotations", {})
                    if not {"summary", "description"} <= annotations.keys():
                        problems.append(f"{at}: needs summary and description annotations")
    return problems


def service_monitors(overlay: Overlay) -> list[str]:
    problems = []
    services = overlay.of_kind("Service")
    for monitor in overlay.of_kind("ServiceMonitor"):
        at = f"{overlay.name}: {where(monitor)}"
        chosen = [s for s in services if selects(monitor["spec"]["selector"], _labels(s))]
        if not chosen:
            problems.append(f"{at}: selects no Service")
        for endpoint in monitor["spec"]["endpoints"]:
            for service in chosen:
                names = {p.get("name") for p in service["spec"]["ports"]}
                if endpoint.get("port") not in names:
                    problems.append(f"{at}: {where(service)} has no port {endpoint.get('port')}")
    return problems


def _labels(obj: Obj) -> dict[str, str]:
    labels: dict[str, str] = obj["metadata"].get("labels", {})
    return labels


def autoscalers(overlay: Overlay, root: Path, known: set[str]) -> list[str]:
    """External metrics the HPAs use are served by the adapter rule and exported."""
    hpas = overlay.of_kind("HorizontalPodAutoscaler")
    if not hpas:
        return []
    values = yaml.safe_load((root / ADAPTER_VALUES).read_text())
    served = {rule["name"]["as"] for rule in values["rules"]["external"]}
    problems = []
    for hpa in hpas:
        for metric in hpa["spec"].get("metrics", []):
            if metric["type"] != "External":
                continue
            name = metric["external"]["metric"]["name"]
            at = f"{overlay.name}: {where(hpa)}"
            if name not in served:
                problems.append(f"{at}: external metric {name} is not served by {ADAPTER_VALUES}")
            if name not in known:
                problems.append(f"{at}: no service exports {name}")
    return problems


def dashboard(root: Path, known: set[str]) -> list[str]:
    """Every panel query is valid PromQL over exported metrics; every Vigil metric has
    a panel; panels take their data source from the dashboard's variable."""
    try:
        board: dict[str, Any] = json.loads((root / DASHBOARD).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        return [f"{DASHBOARD}: {exc}"]
    problems, used, ids = [], set(), set()
    for panel in board.get("panels", []):
        at = f"{DASHBOARD}: panel {panel.get('title')!r}"
        if panel.get("id") in ids:
            problems.append(f"{at}: duplicate id {panel.get('id')}")
        ids.add(panel.get("id"))
        if panel.get("type") == "row":
            continue
        if panel.get("datasource", {}).get("uid") != "${datasource}":
            problems.append(f"{at}: datasource must be the ${{datasource}} variable")
        for target in panel.get("targets", []):
            names, found = _query_problems(at, str(target.get("expr", "")), known)
            used |= {_base(n) for n in names}
            problems += found
    missing = sorted(n for n in known if n.startswith("vigil_") and _base(n) not in used)
    problems += [f"{DASHBOARD}: no panel shows {n}" for n in sorted({_base(n) for n in missing})]
    return problems


def check(overlays: list[Overlay], root: Path) -> list[str]:
    known = exported_metrics() | PROMISED
    problems = dashboard(root, known)
    for overlay in overlays:
        problems += alerts(overlay, known)
        problems += service_monitors(overlay)
        problems += autoscalers(overlay, root, known)
    return problems
