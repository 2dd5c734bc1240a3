"""`make k8s-check` fails on broken manifests, each stage on the breakage it exists for.

Every test breaks one thing in a copy of the repository's manifests and runs the check
as `make k8s-check` runs it; the copy unbroken passes every stage.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.k8s_tools import ROOT, k8s_tools

COPIED = ("k8s", "Dockerfile", "services/detector/rules/default.yaml")


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of what the check reads, to break."""
    for name in COPIED:
        source, target = ROOT / name, tmp_path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target)
        else:
            shutil.copy(source, target)
    return tmp_path


def k8s_check(root: Path, *only: str) -> subprocess.CompletedProcess[str]:
    stages = [arg for stage in only for arg in ("--only", stage)]
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "services.cli.k8s_check",
            "--tools",
            str(k8s_tools().bin),
            "--root",
            str(root),
            *stages,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=ROOT,
    )


def edit(path: Path, old: str, new: str, count: int = 1) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, count))


def test_the_unbroken_copy_passes_every_stage(tree: Path) -> None:
    result = k8s_check(tree)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""
    for stage in ("wiring", "monitoring", "schemas", "posture"):
        assert f"k8s-check: {stage}: 0 problem(s)" in result.stderr


def test_an_overlay_kustomize_cannot_build_fails(tree: Path) -> None:
    edit(tree / "k8s/overlays/dev/kustomization.yaml", "  - ../../base", "  - ../../basis")
    result = k8s_check(tree)
    assert result.returncode == 1
    assert result.stdout.startswith("dev: kustomize cannot render it:")


def test_a_writable_root_filesystem_fails_the_posture_check(tree: Path) -> None:
    edit(
        tree / "k8s/base/analyzer.yaml",
        "readOnlyRootFilesystem: true",
        "readOnlyRootFilesystem: false",
    )
    result = k8s_check(tree)
    assert result.returncode == 1
    failures = result.stdout.splitlines()
    for overlay in ("dev", "prod"):
        assert (
            f"[posture] {overlay}.yaml: Deployment.vigil.analyzer: CKV_K8S_22 "
            "Use read-only filesystem for containers where possible"
        ) in failures


@pytest.mark.parametrize(
    ("old", "new", "check_id"),
    [
        ('              drop: ["ALL"]\n', '              drop: ["NET_RAW"]\n', "CKV_K8S_37"),
        (
            "automountServiceAccountToken: false\n      enableServiceLinks",
            "enableServiceLinks",
            "CKV_K8S_38",
        ),
        ("        seccompProfile:\n          type: RuntimeDefault\n", "", "CKV_K8S_31"),
    ],
    ids=["capabilities-not-all-dropped", "service-account-token-mounted", "no-seccomp"],
)
def test_posture_holes_in_a_pod_fail(tree: Path, old: str, new: str, check_id: str) -> None:
    path = tree / "k8s/base/notifier.yaml"
    edit(path, old, new)
    if check_id == "CKV_K8S_31":  # the container repeats the pod's profile: drop both
        edit(path, "            seccompProfile:\n              type: RuntimeDefault\n", "")
    result = k8s_check(tree, "posture")
    assert re.search(rf"Deployment\.vigil\.notifier: {check_id} ", result.stdout), result.stdout
    assert result.returncode == 1


def test_an_image_that_runs_as_root_fails(tree: Path) -> None:
    edit(tree / "Dockerfile", "USER 10001:10001", "USER root")
    result = k8s_check(tree, "posture")
    assert result.returncode == 1
    assert "CKV_DOCKER_8 Ensure the last USER is not root" in result.stdout


@pytest.mark.parametrize(
    ("old", "new", "complaint"),
    [
        ("  replicas: 1\n", '  replicas: "1"\n', "spec.replicas: '1' is not of type 'integer'"),
        (
            "            grpc:\n              port: 50051\n",
            "            grpc:\n              port: 50051\n              path: /health\n",
            "Additional properties are not allowed ('path' was unexpected)",
        ),
    ],
    ids=["wrong-type", "unknown-field"],
)
def test_an_object_the_schemas_refuse_fails(tree: Path, old: str, new: str, complaint: str) -> None:
    edit(tree / "k8s/base/ingest.yaml", old, new)
    result = k8s_check(tree, "schemas")
    assert result.returncode == 1
    for version in ("1.30", "1.37"):
        assert re.search(
            rf"\[schemas\] kubernetes {version}\.0: ERROR dev\.yaml did not validate for "
            rf"resource deployment/ingest .*{re.escape(complaint)}",
            result.stdout,
        ), result.stdout


def test_more_detector_shards_than_ingest_routes_to_fails(tree: Path) -> None:
    edit(tree / "k8s/overlays/prod/kustomization.yaml", "    count: 4", "    count: 5")
    result = k8s_check(tree, "wiring")
    assert result.returncode == 1
    assert (
        "[wiring] prod: Deployment/ingest: VIGIL_DETECTOR_ADDRS lists 4 shard(s)" in result.stdout
    )
    assert "but the detector StatefulSet has 5 replica(s)" in result.stdout


def test_a_grace_period_shorter_than_the_drain_fails(tree: Path) -> None:
    edit(tree / "k8s/base/analyzer.yaml", 'value: "15"', 'value: "30"')
    result = k8s_check(tree, "wiring")
    assert result.returncode == 1
    assert (
        "[wiring] dev: Deployment/analyzer: container analyzer: terminationGracePeriodSeconds "
        "25 should be preStop 5 s + VIGIL_SHUTDOWN_GRACE_SECONDS 30 s + 1-15 s to close"
    ) in result.stdout.splitlines()


def test_a_port_setting_that_is_not_the_container_port_fails(tree: Path) -> None:
    edit(tree / "k8s/base/notifier.yaml", 'value: "8080"', 'value: "8081"')
    result = k8s_check(tree, "wiring")
    assert result.returncode == 1
    assert (
        "[wiring] dev: Deployment/notifier: container notifier: VIGIL_HTTP_PORT=8081 but "
        "container port http is 8080"
    ) in result.stdout.splitlines()


def test_a_committed_secret_fails(tree: Path) -> None:
    (tree / "k8s/base/secret.yaml").write_text(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: vigil-secrets\n"
        "stringData:\n  REDIS_PASSWORD: hunter2\n"
    )
    edit(
        tree / "k8s/base/kustomization.yaml",
        "  - namespace.yaml\n",
        "  - namespace.yaml\n  - secret.yaml\n",
    )
    result = k8s_check(tree, "wiring")
    assert result.returncode == 1
    assert (
        "[wiring] prod: Secret/vigil-secrets: secrets are created on the cluster" in result.stdout
    )


def test_rules_that_drifted_from_the_shipped_default_fail(tree: Path) -> None:
    edit(tree / "services/detector/rules/default.yaml", "quiet_readings: 5", "quiet_readings: 6")
    result = k8s_check(tree, "wiring")
    assert result.returncode == 1
    assert (
        "[wiring] k8s/base/rules/rules.yaml differs from services/detector/rules/default.yaml"
        in result.stdout
    )


def test_an_alert_on_a_metric_no_service_exports_fails(tree: Path) -> None:
    edit(
        tree / "k8s/components/monitoring/alerts.yaml",
        "increase(vigil_analyzer_dead_letters_total[15m])",
        "increase(vigil_analyzer_dead_leters_total[15m])",
    )
    result = k8s_check(tree, "monitoring")
    assert result.returncode == 1
    assert (
        "[monitoring] prod: PrometheusRule/vigil: VigilDeadLetters: no service exports "
        "vigil_analyzer_dead_leters_total"
    ) in result.stdout.splitlines()


def test_an_alert_that_is_not_promql_fails(tree: Path) -> None:
    edit(
        tree / "k8s/components/monitoring/alerts.yaml",
        "max(vigil_analyzer_breaker_state) == 2",
        "max(vigil_analyzer_breaker_state == 2",
    )
    result = k8s_check(tree, "monitoring")
    assert result.returncode == 1
    assert "VigilLLMBreakerOpen: invalid PromQL (unclosed left parenthesis)" in result.stdout


def test_a_dashboard_missing_a_vigil_metric_fails(tree: Path) -> None:
    edit(
        tree / "k8s/components/monitoring/grafana/vigil.json",
        "sum(vigil_notifier_grpc_subscribers)",
        "sum(vigil_notifier_ws_clients)",
    )
    result = k8s_check(tree, "monitoring")
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        "[monitoring] k8s/components/monitoring/grafana/vigil.json: no panel shows "
        "vigil_notifier_grpc_subscribers"
    ]


def test_an_autoscaler_metric_the_adapter_does_not_serve_fails(tree: Path) -> None:
    edit(
        tree / "k8s/components/monitoring/prometheus-adapter/values.yaml",
        "as: vigil_analyzer_queue_depth",
        "as: vigil_queue_depth",
    )
    result = k8s_check(tree, "monitoring")
    assert result.returncode == 1
    assert (
        "[monitoring] prod: HorizontalPodAutoscaler/analyzer: external metric "
        "vigil_analyzer_queue_depth is not served by "
        "k8s/components/monitoring/prometheus-adapter/values.yaml"
    ) in result.stdout.splitlines()


def test_missing_tools_say_how_to_get_them(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "services.cli.k8s_check", "--tools", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"k8s-check: kubectl, kubernetes-validate, checkov not in {tmp_path}; run `make k8s-check`"
    )
