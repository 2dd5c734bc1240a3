"""Run the containers of a rendered overlay as local processes, resolving locally what
Kubernetes would resolve in the cluster.

- env: literal values; Secret keys from a given dict (a missing key fails unless the
  reference is optional); the pod's own name for `fieldRef: metadata.name`; `$(VAR)`
  references, in env, command and args, expanded as the kubelet expands them.
- ports: every container port becomes a free loopback port, and so does every env value
  `*_PORT` that names one; `VIGIL_HOST` becomes 127.0.0.1.
- addresses: a Service's `name:port`, and a StatefulSet pod's `name-N.service:port`,
  become 127.0.0.1 and the local port of the container behind them (one local pod per
  workload stands for all its replicas).
- volumes: ConfigMap volumes become files with the rendered data; other volumes empty
  folders. Paths under a mount point are rewritten to the local folder.

The command line is otherwise the manifest's, word for word.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services.cli.k8s_check.render import (
    WORKLOADS,
    Overlay,
    containers,
    pod_spec,
    selects,
    template_labels,
)
from services.common.embedded_redis import free_ports

Obj = dict[str, Any]
_REFERENCE = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


def expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes' `$(VAR)` expansion: defined names expand, `$$` escapes, others stay."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        return env.get(match.group(1), match.group(0))

    return _REFERENCE.sub(replace, text)


@dataclass
class LocalPod:
    """One container of one workload, ready to run here."""

    workload: Obj
    container: Obj
    pod_name: str
    ports: dict[int, int] = field(default_factory=dict)  # container port -> local port
    argv: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return str(self.container["name"])

    def local(self, port: int | str) -> int:
        """The local port of a container port given by number or by name."""
        if isinstance(port, str):
            port = next(p["containerPort"] for p in self.container["ports"] if p["name"] == port)
        return self.ports[int(port)]


class LocalCluster:
    """The containers of `overlay`, each planned as a local process under `workdir`."""

    def __init__(
        self, overlay: Overlay, secrets: dict[str, str], workdir: Path, executables: dict[str, str]
    ) -> None:
        self.overlay = overlay
        self.secrets = secrets
        self.workdir = workdir
        self.executables = executables
        self.pods = [
            LocalPod(w, c, _pod_name(w)) for w in overlay.of_kind(*WORKLOADS) for c in containers(w)
        ]
        wanted = [(pod, int(p["containerPort"])) for pod in self.pods
                  for p in pod.container["ports"]]  # fmt: skip
        for (pod, container_port), port in zip(wanted, free_ports(len(wanted)), strict=True):
            pod.ports[container_port] = port
        self.addresses = self._addresses()
        for pod in self.pods:
            mounts = self._volumes(pod)
            pod.env = self._env(pod, mounts)
            words = [*pod.container.get("command", []), *pod.container.get("args", [])]
            words = [_rewrite_paths(expand(w, pod.env), mounts) for w in words]
            pod.argv = [self.executables.get(words[0], words[0]), *words[1:]]

    def pod(self, name: str) -> LocalPod:
        return next(p for p in self.pods if p.name == name)

    def unresolved(self) -> dict[str, list[str]]:
        """Env values still naming a `host:port` other than loopback, by pod (should be
        none: every address the manifests use must be one this cluster stands in for)."""
        address = re.compile(r"(?<![\w.-])[a-z][a-z0-9-]*(\.[a-z0-9-]+)*:\d+")
        found = {p.name: [v for v in p.env.values() if address.search(v)] for p in self.pods}
        return {k: v for k, v in found.items() if v}

    def _addresses(self) -> dict[str, str]:
        """`host:port` as written in the manifests -> `127.0.0.1:local port`."""
        table = {}
        for service in self.overlay.of_kind("Service"):
            name = service["metadata"]["name"]
            for pod in self.pods:
                if not selects(service["spec"]["selector"], template_labels(pod.workload)):
                    continue
                for port in service["spec"]["ports"]:
                    local = f"127.0.0.1:{pod.local(port.get('targetPort', port['port']))}"
                    table[f"{name}:{port['port']}"] = local
                    if pod.workload["spec"].get("serviceName") == name:
                        for i in range(int(pod.workload["spec"].get("replicas", 1))):
                            table[
                                f"{pod.workload['metadata']['name']}-{i}.{name}:{port['port']}"
                            ] = local
        return table

    def _volumes(self, pod: LocalPod) -> dict[str, Path]:
        """mountPath -> local folder, ConfigMap data written into it."""
        volumes = {v["name"]: v for v in pod_spec(pod.workload).get("volumes", [])}
        claims = {
            c["metadata"]["name"] for c in pod.workload["spec"].get("volumeClaimTemplates", [])
        }
        mounts = {}
        for mount in pod.container.get("volumeMounts", []):
            folder = self.workdir / pod.pod_name / mount["name"]
            folder.mkdir(parents=True, exist_ok=True)
            volume = volumes.get(mount["name"], {})
            if "configMap" in volume:
                config_map = self.overlay.find("ConfigMap", volume["configMap"]["name"])
                assert config_map is not None, (
                    f"ConfigMap {volume['configMap']['name']} not rendered"
                )
                for key, text in config_map.get("data", {}).items():
                    (folder / key).write_text(text)
            else:
                assert "emptyDir" in volume or mount["name"] in claims, mount
            mounts[mount["mountPath"].rstrip("/")] = folder
        return mounts

    def _env(self, pod: LocalPod, mounts: dict[str, Path]) -> dict[str, str]:
        env: dict[str, str] = {}
        for entry in pod.container.get("env", []):
            name = entry["name"]
            if "value" in entry:
                env[name] = expand(str(entry["value"]), env)
                continue
            source = entry["valueFrom"]
            if "secretKeyRef" in source:
                ref = source["secretKeyRef"]
                if ref["key"] in self.secrets:
                    env[name] = self.secrets[ref["key"]]
                else:
                    assert ref.get("optional"), f"{pod.name}: secret key {ref['key']} not given"
            elif source.get("fieldRef", {}).get("fieldPath") == "metadata.name":
                env[name] = pod.pod_name
            else:
                raise AssertionError(f"{pod.name}: cannot resolve {name} from {source}")
        return {k: self._localize(k, v, pod, mounts) for k, v in env.items()}

    def _localize(self, name: str, value: str, pod: LocalPod, mounts: dict[str, Path]) -> str:
        if name == "VIGIL_HOST":
            return "127.0.0.1"
        if name.endswith("_PORT") and value.isdigit() and int(value) in pod.ports:
            return str(pod.ports[int(value)])
        for address in sorted(self.addresses, key=len, reverse=True):
            value = re.sub(
                rf"(?<![\w.-]){re.escape(address)}(?!\d)", self.addresses[address], value
            )
        return _rewrite_paths(value, mounts)


def _pod_name(workload: Obj) -> str:
    """A StatefulSet's first pod is NAME-0; a Deployment's pod name is only unique."""
    suffix = "0" if workload["kind"] == "StatefulSet" else "local"
    return f"{workload['metadata']['name']}-{suffix}"


def _rewrite_paths(value: str, mounts: dict[str, Path]) -> str:
    for mount_path, folder in mounts.items():
        if value == mount_path or value.startswith(mount_path + "/"):
            return str(folder) + value[len(mount_path) :]
    return value
