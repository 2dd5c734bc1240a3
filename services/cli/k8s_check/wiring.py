"""Vigil's own rules for its manifests, beyond what schemas and posture tools know.

Each check reads one rendered overlay and returns problems as sentences naming the
object; none changes anything. They pin what would otherwise drift silently: ingest's
detector list against the detector's replicas, the rules file against the detector's
mount, Services and budgets against the pods they select; `workloads` holds the checks
of each container (command, ports, probes, drain time).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from services.cli.k8s_check import workloads
from services.cli.k8s_check.render import (
    WORKLOADS,
    Overlay,
    containers,
    env_sources,
    env_values,
    pod_spec,
    ports,
    selects,
    template_labels,
    where,
)

SECRET_NAME = "vigil-secrets"  # noqa: S105 (the Secret object's name, no value)


def shards_match_routing(overlay: Overlay) -> list[str]:
    """Ingest's VIGIL_DETECTOR_ADDRS names each detector shard once, in ordinal order,
    through the StatefulSet's headless Service; each shard knows its own name."""
    detector = overlay.find("StatefulSet", "detector")
    ingest = overlay.find("Deployment", "ingest")
    if detector is None or ingest is None:
        return ["the detector StatefulSet and the ingest Deployment must both be rendered"]
    problems = []
    service_name = detector["spec"].get("serviceName", "")
    service = overlay.find("Service", service_name)
    if service is None or service["spec"].get("clusterIP") != "None":
        problems.append(f"StatefulSet/detector: serviceName {service_name!r} must be headless")
    replicas = int(detector["spec"].get("replicas", 1))
    container = next(containers(detector))
    grpc_port = ports(container).get("grpc")
    expected = [f"detector-{i}.{service_name}:{grpc_port}" for i in range(replicas)]
    actual = env_values(next(containers(ingest))).get("VIGIL_DETECTOR_ADDRS", "").split(",")
    if actual != expected:
        problems.append(
            f"Deployment/ingest: VIGIL_DETECTOR_ADDRS lists {len(actual)} shard(s) "
            f"{','.join(actual)!r} but the detector StatefulSet has {replicas} replica(s): "
            f"expected {','.join(expected)!r}"
        )
    shard = env_sources(container).get("VIGIL_DETECTOR_SHARD", {})
    if shard.get("fieldRef", {}).get("fieldPath") != "metadata.name":
        problems.append("StatefulSet/detector: VIGIL_DETECTOR_SHARD must come from metadata.name")
    return problems


def rules_mounted(overlay: Overlay) -> list[str]:
    """VIGIL_RULES names a key of a ConfigMap mounted as a directory (no subPath, so
    edits reach the pod)."""
    detector = overlay.find("StatefulSet", "detector")
    if detector is None:
        return []
    container = next(containers(detector))
    path = env_values(container).get("VIGIL_RULES", "")
    volumes = {v["name"]: v for v in pod_spec(detector).get("volumes", [])}
    for mount in container.get("volumeMounts", []):
        directory = mount["mountPath"].rstrip("/") + "/"
        if not path.startswith(directory):
            continue
        config_map = volumes.get(mount["name"], {}).get("configMap", {}).get("name")
        rendered = overlay.find("ConfigMap", str(config_map))
        key = path[len(directory) :]
        if "subPath" in mount:
            return [
                f"StatefulSet/detector: mount {directory} without subPath (a subPath never updates)"
            ]
        if rendered is None or key not in rendered.get("data", {}):
            return [
                f"StatefulSet/detector: VIGIL_RULES={path} is not a key of ConfigMap {config_map}"
            ]
        return []
    return [f"StatefulSet/detector: VIGIL_RULES={path!r} is not inside a mounted ConfigMap"]


def secrets_referenced_not_committed(overlay: Overlay) -> list[str]:
    problems = [
        f"{where(o)}: secrets are created on the cluster (README), never committed"
        for o in overlay.of_kind("Secret")
    ]
    for workload in overlay.of_kind(*WORKLOADS):
        for container in containers(workload):
            for name, source in env_sources(container).items():
                secret = source.get("secretKeyRef", {}).get("name")
                if secret not in (None, SECRET_NAME):
                    problems.append(
                        f"{where(workload)}: {name} comes from {secret}, not {SECRET_NAME}"
                    )
    return problems


def selectors_match(overlay: Overlay) -> list[str]:
    """Services, disruption budgets and autoscalers point at workloads that exist, and
    Service target ports name ports of the pods they select."""
    problems = []
    workloads = overlay.of_kind(*WORKLOADS)
    for service in overlay.of_kind("Service"):
        chosen = [w for w in workloads if selects(service["spec"]["selector"], template_labels(w))]
        if not chosen:
            problems.append(f"{where(service)}: selects no pods")
        for port in service["spec"]["ports"]:
            target = port.get("targetPort", port["port"])
            for workload in chosen:
                names = {n: p for c in containers(workload) for n, p in ports(c).items()}
                if target not in names and target not in names.values():
                    problems.append(
                        f"{where(service)}: targetPort {target} is not a port of {where(workload)}"
                    )
    for budget in overlay.of_kind("PodDisruptionBudget"):
        if not any(selects(budget["spec"]["selector"], template_labels(w)) for w in workloads):
            problems.append(f"{where(budget)}: selects no pods")
    for hpa in overlay.of_kind("HorizontalPodAutoscaler"):
        target_ref = hpa["spec"]["scaleTargetRef"]
        target = overlay.find(target_ref["kind"], target_ref["name"])
        if target is None:
            problems.append(
                f"{where(hpa)}: scales {target_ref['kind']}/{target_ref['name']}, "
                "which is not rendered"
            )
        elif "replicas" in target["spec"]:
            problems.append(f"{where(hpa)}: its target must not fix replicas (the HPA owns them)")
    return problems


OVERLAY_CHECKS: list[Callable[[Overlay], list[str]]] = [
    workloads.labels,
    workloads.containers_run_vigil,
    workloads.drain_fits_grace,
    shards_match_routing,
    rules_mounted,
    secrets_referenced_not_committed,
    selectors_match,
]


def rules_copy_is_current(root: Path) -> list[str]:
    """The base's rules ConfigMap starts as the rules Vigil ships."""
    shipped = root / "services" / "detector" / "rules" / "default.yaml"
    copy = root / "k8s" / "base" / "rules" / "rules.yaml"
    if not copy.exists() or copy.read_bytes() != shipped.read_bytes():
        return [f"{copy.relative_to(root)} differs from {shipped.relative_to(root)}: copy it over"]
    return []


def check(overlay: Overlay) -> list[str]:
    problems = []
    for each in OVERLAY_CHECKS:
        try:
            problems += each(overlay)
        except (KeyError, TypeError, ValueError, StopIteration) as exc:
            # A shape the check cannot read; the schema stage says what is wrong with it.
            problems.append(f"{each.__name__}: cannot read the manifests ({exc!r})")
    return [f"{overlay.name}: {p}" for p in problems]
