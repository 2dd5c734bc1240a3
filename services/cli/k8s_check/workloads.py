"""Vigil's containers run as the cluster needs: `vigil serve NAME` listening on all
interfaces with JSON logs, port settings equal to the container ports, native probes,
a drain that fits the grace period, and the recommended labels.

Each check reads one rendered overlay and returns problems naming the object.
"""

from __future__ import annotations

from services.cli import registry
from services.cli.k8s_check.render import (
    WORKLOADS,
    Obj,
    Overlay,
    containers,
    env_values,
    is_vigil,
    pod_spec,
    ports,
    template_labels,
    where,
)

LABELS = ("app.kubernetes.io/name", "app.kubernetes.io/component", "app.kubernetes.io/part-of")
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
