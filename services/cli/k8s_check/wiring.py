"""Vigil's own rules for its manifests, beyond what schemas and posture tools know.

Each check reads one rendered overlay and returns problems as sentences naming the
object; none changes anything. They pin what would otherwise drift silently: ingest's
detector list against the detector's replicas, env ports against container ports,
drain time against the grace period, the rules file against the detector's mount.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from services.cli import registry
from services.cli.k8s_check.render import (
    WORKLOADS,
    Obj,
    Overlay,
    containers,
    env_sources,
    env_values,
    is_vigil,
    pod_spec,
    ports,
    selects,
    template_labels,
    where,
)

LABELS = ("app.kubernetes.io/name", "app.kubernetes.io/component", "app.kubernetes.io/part-of")
SECRET_NAME = "vigil-secrets"  # noqa: S105 (the Secret object's name, no value)
#: Seconds between the end of the drain and SIGKILL, for closing Redis and exiting.
MIN_CLOSE_MARGIN_S, MAX_CLOSE_MARGIN_S = 1, 15
PORT_ENV = {"grpc": "VIGIL_GRPC_PORT", "metrics": "VIGIL_METRICS_PORT", "http": "VIGIL_HTTP_PORT"}
HTTP_SERVICES = {"notifier"}


def labels(overlay: Overlay) -> list[str]:
    problems = []
    for obj in overlay.objects:
        if obj["kind"] in (*WORKLOADS, "Service", "ServiceAccount", "PodDisruptionBudget"):
            have = obj["metadata"].get("labels", {})
            missing = [k for k in LABELS if k not in have]
            if missing:
                problems.append(f"{where(obj)}: missing labels {', '.join(missing)}")
        if obj["kind"] in WORKLOADS:
            missing = [k for k in LABELS if k not in template_labels(obj)]
            if missing:
                problems.append(f"{where(obj)}: pod template misses labels {', '.join(missing)}")
    return problems


def containers_run_vigil(overlay: Overlay) -> list[str]:
    """Vigil containers: `vigil serve NAME`, listening on all interfaces, JSON logs, and
    every port setting equal to the container port of that name."""
    problems = []
    for workload in overlay.of_kind(*WORKLOADS):
        spec = pod_spec(workload)
        if spec.get("enableServiceLinks", True):
            problems.append(f"{where(workload)}: set enableServiceLinks: false")
        if spec.get("automountServiceAccountToken", True):
            problems.append(f"{where(workload)}: set automountServiceAccountToken: false")
        for container in filter(is_vigil, containers(workload)):
            name, env = container["name"], env_values(container)
            at = f"{where(workload)}: container {name}"
            command = container.get("command")
            if command != ["vigil", "serve", name] or name not in registry.SERVICES:
                problems.append(f"{at}: command must be vigil serve {name} (a Vigil service)")
            if env.get("VIGIL_HOST") != "0.0.0.0":
                problems.append(f"{at}: VIGIL_HOST must be 0.0.0.0 to be reachable in the pod")
            if env.get("VIGIL_LOG_FORMAT") != "json":
                problems.append(f"{at}: VIGIL_LOG_FORMAT must be json in the cluster")
            declared = ports(container)
            for port_name, variable in PORT_ENV.items():
                if port_name in declared and env.get(variable) != str(declared[port_name]):
                    problems.append(
                        f"{at}: {variable}={env.get(variable)} but container port "
                        f"{port_name} is {declared[port_name]}"
                    )
            problems += _probes(at, name, container, declared)
    return problems


def _probes(at: str, name: str, container: Obj, declared: dict[str, int]) -> list[str]:
    problems = []
    for kind in ("livenessProbe", "readinessProbe"):
        probe = container.get(kind)
        if probe is None:
            problems.append(f"{at}: no {kind}")
        elif name in HTTP_SERVICES:
            port = probe.get("httpGet", {}).get("port")
            if port not in (declared.get("http"), "http"):
                problems.append(f"{at}: {kind} must be an HTTP GET on the http port")
        elif probe.get("grpc", {}).get("port") != declared.get("grpc"):
            problems.append(f"{at}: {kind} must be a native gRPC probe on the grpc port")
    if name in HTTP_SERVICES:
        paths = {
            kind: container.get(kind, {}).get("httpGet", {}).get("path")
            for kind in ("livenessProbe", "readinessProbe")
        }
        if paths != {"livenessProbe": "/healthz", "readinessProbe": "/readyz"}:
            problems.append(f"{at}: probes must be /healthz (liveness) and /readyz (readiness)")
    return problems


def drain_fits_grace(overlay: Overlay) -> list[str]:
    """terminationGracePeriodSeconds covers the preStop sleep, the service's drain
    (VIGIL_SHUTDOWN_GRACE_SECONDS) and a margin to close; no more than a little over."""
    problems = []
    for workload in overlay.of_kind(*WORKLOADS):
        period = pod_spec(workload).get("terminationGracePeriodSeconds", 30)
        for container in filter(is_vigil, containers(workload)):
            at = f"{where(workload)}: container {container['name']}"
            command = (
                container.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command")
            )
            if not (command and len(command) == 2 and command[0] == "sleep"):
                problems.append(f"{at}: needs a preStop `sleep N` so endpoints forget the pod")
                continue
            drain = float(env_values(container).get("VIGIL_SHUTDOWN_GRACE_SECONDS", "10"))
            margin = period - float(command[1]) - drain
            if not MIN_CLOSE_MARGIN_S <= margin <= MAX_CLOSE_MARGIN_S:
                problems.append(
                    f"{at}: terminationGracePeriodSeconds {period} should be preStop "
                    f"{command[1]} s + VIGIL_SHUTDOWN_GRACE_SECONDS {drain:g} s + "
                    f"{MIN_CLOSE_MARGIN_S}-{MAX_CLOSE_MARGIN_S} s to close"
                )
    return problems


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
            return [f"StatefulSet/detector: mount {directory} with no subPath (it never updates)"]
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
    labels,
    containers_run_vigil,
    drain_fits_grace,
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
